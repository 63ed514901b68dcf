#pragma once
// safetensors reader and writer (https://github.com/huggingface/safetensors format):
//   [u64 little-endian header length N][N bytes JSON header][raw little-endian tensor data]
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the data section) plus an optional "__metadata__" string->string map.
// Supported dtypes: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL.
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dit {

using TensorMap = std::map<std::string, torch::Tensor>;
using Metadata = std::map<std::string, std::string>;

// A safetensors file mapped read-only into memory. Tensors returned by view() alias the
// mapping (zero copy) and keep it alive; load() returns owned copies.
// The mapping is private copy-on-write: an in-place op on a view never reaches the file (and
// does not crash), but is seen by other views of the same tensor from this object. A tensor
// whose offset is not a multiple of its element size (never written by save_safetensors) is
// returned by view() as a copy. BOOL bytes other than 0/1 are rejected as corruption.
class SafeTensorsFile {
 public:
  // Opens and validates the whole header: header length within the file, JSON syntax, every
  // entry's dtype, shape (non-negative), offsets (inside the data section, size equal to
  // numel * element size, no overlaps). Throws dit::Error naming the file and tensor.
  explicit SafeTensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const Metadata& metadata() const { return metadata_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // Shape of a tensor as stored; throws if absent.
  std::vector<int64_t> shape(const std::string& name) const;
  std::string dtype_name(const std::string& name) const;
  // Number of elements (never overflows: at most the tensor's byte count); throws if absent.
  int64_t numel(const std::string& name) const;

  // Zero-copy view of tensor `name` (throws if absent).
  torch::Tensor view(const std::string& name) const;
  // All tensors, copied out of the mapping.
  TensorMap load() const;

  struct Entry {
    torch::ScalarType dtype;
    std::string dtype_name;
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0;  // byte offsets in the data section
  };

 private:
  std::string path_;
  std::shared_ptr<void> mapping_;  // unmaps on last release
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, Entry> entries_;
  Metadata metadata_;
};

// Reads every tensor of a file (owned copies).
TensorMap load_safetensors(const std::string& path, Metadata* metadata = nullptr);

// Writes tensors (made contiguous, CPU) atomically (dit/files.h): to a temporary, then rename.
// Deterministic: data ordered by element size (largest first) then name, so every tensor is
// aligned to its element size; header keys sorted; header space-padded to a multiple of 8.
// Throws dit::Error when a dtype is unsupported or the file cannot be written.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const Metadata& metadata = {});

// "F32" <-> torch::kFloat etc.; throws dit::Error for unknown names.
torch::ScalarType safetensors_dtype(const std::string& name);
std::string safetensors_dtype_name(torch::ScalarType dtype);

}  // namespace dit
