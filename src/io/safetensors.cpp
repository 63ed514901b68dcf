// safetensors reader and writer (format: https://github.com/huggingface/safetensors).
//   [u64 little-endian header length N][N bytes JSON header][data section]
// Reader: the whole file is mmap'ed once; the header is validated completely in the
// constructor so that view()/load() can never read outside the mapping. Writer: temp file,
// fsync, rename.
#include "dit/safetensors.h"

#include "dit/error.h"
#include "dit/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)
#include <nlohmann/json.hpp>

// safetensors data is little-endian; we hand the bytes to torch as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "dit safetensors I/O assumes a little-endian host");

namespace dit {
namespace {

using json = nlohmann::json;

// Same limit as the reference implementation (MAX_HEADER_SIZE = 100'000'000).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kSupportedDtypes = "F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL";

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat, 4},  {"F16", torch::kHalf, 2},  {"BF16", torch::kBFloat16, 2},
    {"F64", torch::kDouble, 8}, {"I64", torch::kLong, 8},  {"I32", torch::kInt, 4},
    {"I16", torch::kShort, 2},  {"I8", torch::kChar, 1},   {"U8", torch::kByte, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* find_dtype(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

std::string errno_str(int err) { return std::strerror(err); }

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// True (and *out set) when v is a JSON integer >= 0; false for negatives and non-integers.
bool non_negative_int(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {  // signed: only accept it when >= 0
    const auto s = v.get<int64_t>();
    if (s < 0) return false;
    *out = static_cast<uint64_t>(s);
    return true;
  }
  return false;
}

}  // namespace

// ---- dtype names ---------------------------------------------------------------------------

torch::ScalarType safetensors_dtype(const std::string& name) {
  if (const auto* d = find_dtype(name)) return d->type;
  throw Error(fmt::format("safetensors: unknown dtype '{}' (supported: {})", name,
                          kSupportedDtypes));
}

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  if (const auto* d = find_dtype(dtype)) return d->name;
  throw Error(fmt::format("safetensors: dtype {} cannot be stored (supported: {})",
                          c10::toString(dtype), kSupportedDtypes));
}

// ---- reader --------------------------------------------------------------------------------

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  const auto fail = [&](const std::string& what) -> Error {
    return Error(fmt::format("safetensors '{}': {}", path_, what));
  };

  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw fail(fmt::format("cannot open: {}", errno_str(errno)));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) throw fail(fmt::format("cannot stat: {}", errno_str(errno)));
  if (!S_ISREG(st.st_mode)) throw fail("not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    throw fail(fmt::format("file is {} bytes, shorter than the 8-byte header length",
                           file_size));

  // Private mapping of a read-only descriptor: the file can never be modified through it.
  // PROT_WRITE only makes an in-place op on a view() tensor copy-on-write (private to this
  // process) instead of a SIGSEGV.
  void* addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.fd, 0);
  if (addr == MAP_FAILED)
    throw fail(fmt::format("cannot mmap {} bytes: {}", file_size, errno_str(errno)));
  mapping_ = std::shared_ptr<void>(addr, [file_size](void* p) { ::munmap(p, file_size); });
  const auto* bytes = static_cast<const uint8_t*>(addr);

  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes, 8);  // little-endian host (static_assert above)
  if (header_len > kMaxHeaderBytes)
    throw fail(fmt::format("header length {} exceeds the {}-byte limit", header_len,
                           kMaxHeaderBytes));
  if (header_len > file_size - 8)
    throw fail(fmt::format("header length {} is beyond the end of the file ({} bytes)",
                           header_len, file_size));
  const uint64_t data_size = file_size - 8 - header_len;
  data_ = bytes + 8 + header_len;

  // Parse, rejecting duplicate top-level keys (an ambiguous header).
  std::string duplicate;
  bool has_duplicate = false;
  std::set<std::string> seen;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && !has_duplicate) {
        has_duplicate = true;
        duplicate = key;
      }
    }
    return true;
  };
  // nlohmann's lexer stops at a NUL byte and would ignore whatever follows it; a raw NUL is
  // never valid JSON (the reference parser rejects it too).
  const char* h = reinterpret_cast<const char*>(bytes + 8);
  if (const void* nul = std::memchr(h, '\0', header_len))
    throw fail(fmt::format("header is not valid JSON: NUL byte at header offset {}",
                           static_cast<const char*>(nul) - h));
  json header;
  try {
    header = json::parse(h, h + header_len, cb);
  } catch (const json::exception& e) {
    throw fail(fmt::format("header is not valid JSON: {}", e.what()));
  }
  if (!header.is_object())
    throw fail(fmt::format("header must be a JSON object, got {}", header.type_name()));
  if (has_duplicate) throw fail(fmt::format("header: duplicate key '{}'", duplicate));

  for (const auto& item : header.items()) {
    // Named references, not a structured binding: lambdas below capture them (C++17, clang).
    const std::string& name = item.key();
    const json& value = item.value();
    if (name == kMetadataKey) {
      if (!value.is_object())
        throw fail(fmt::format("'{}' must be an object of strings, got {}", kMetadataKey,
                               value.type_name()));
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string())
          throw fail(fmt::format("'{}' entry '{}' must be a string, got {}", kMetadataKey,
                                 key, v.type_name()));
        metadata_[key] = v.get<std::string>();
      }
      continue;
    }

    const auto tfail = [&](const std::string& what) {
      return fail(fmt::format("tensor '{}': {}", name, what));
    };
    if (!value.is_object())
      throw tfail(fmt::format("entry must be an object with dtype, shape and data_offsets, "
                              "got {}", value.type_name()));
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!value.contains(field)) throw tfail(fmt::format("missing field '{}'", field));

    Entry e;
    const json& jdtype = value["dtype"];
    if (!jdtype.is_string())
      throw tfail(fmt::format("dtype must be a string, got {}", jdtype.type_name()));
    e.dtype_name = jdtype.get<std::string>();
    const DtypeInfo* dt = find_dtype(e.dtype_name);
    if (!dt)
      throw tfail(fmt::format("unknown dtype '{}' (supported: {})", e.dtype_name,
                              kSupportedDtypes));
    e.dtype = dt->type;

    const json& jshape = value["shape"];
    if (!jshape.is_array())
      throw tfail(fmt::format("shape must be an array of non-negative integers, got {}",
                              jshape.type_name()));
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t i = 0; i < jshape.size(); ++i) {
      uint64_t dim = 0;
      if (!non_negative_int(jshape[i], &dim) ||
          dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw tfail(fmt::format("shape[{}] = {} is not a non-negative integer", i,
                                jshape[i].dump()));
      e.shape.push_back(static_cast<int64_t>(dim));
      overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
    }
    uint64_t nbytes = 0;
    if (overflow || __builtin_mul_overflow(numel, dt->size, &nbytes) ||
        nbytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw tfail(fmt::format("shape {} {} is too large (byte count overflows)",
                              jshape.dump(), e.dtype_name));

    const json& joff = value["data_offsets"];
    uint64_t begin = 0, end = 0;
    if (!joff.is_array() || joff.size() != 2 || !non_negative_int(joff[0], &begin) ||
        !non_negative_int(joff[1], &end))
      throw tfail(fmt::format("data_offsets must be [begin, end] with non-negative "
                              "integers, got {}", joff.dump()));
    if (begin > end)
      throw tfail(fmt::format("data_offsets [{}, {}]: begin > end", begin, end));
    if (end > data_size)
      throw tfail(fmt::format("data_offsets end {} is beyond the data section ({} bytes; "
                              "file truncated?)", end, data_size));
    if (end - begin != nbytes)
      throw tfail(fmt::format("data_offsets span {} bytes, shape {} {} needs {}",
                              end - begin, shape_str(e.shape), e.dtype_name, nbytes));
    e.begin = static_cast<size_t>(begin);
    e.end = static_cast<size_t>(end);
    // A bool byte other than 0/1 is undefined behaviour in torch: treat it as corruption.
    if (e.dtype == torch::kBool)
      for (size_t i = e.begin; i < e.end; ++i)
        if (data_[i] > 1)
          throw tfail(fmt::format("BOOL element {} has byte value {}, expected 0 or 1",
                                  i - e.begin, data_[i]));
    entries_.emplace(name, std::move(e));
  }

  // No two tensors may share bytes (empty ranges share none). Gaps and trailing bytes are
  // tolerated (the reference writer produces none; other writers may pad).
  std::vector<std::pair<const std::string*, const Entry*>> ranges;
  for (const auto& [name, e] : entries_)
    if (e.end > e.begin) ranges.emplace_back(&name, &e);
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->begin, a.second->end) < std::tie(b.second->begin, b.second->end);
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Entry& prev = *ranges[i - 1].second;
    const Entry& cur = *ranges[i].second;
    if (cur.begin < prev.end)
      throw fail(fmt::format("tensor '{}': data_offsets [{}, {}] overlap tensor '{}' [{}, {}]",
                             *ranges[i].first, cur.begin, cur.end, *ranges[i - 1].first,
                             prev.begin, prev.end));
  }
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

bool SafeTensorsFile::contains(const std::string& name) const {
  return entries_.count(name) != 0;
}

namespace {
const SafeTensorsFile::Entry& find_entry(
    const std::map<std::string, SafeTensorsFile::Entry>& entries, const std::string& path,
    const std::string& name) {
  auto it = entries.find(name);
  if (it == entries.end())
    throw Error(fmt::format("safetensors '{}': no tensor '{}' (file has {} tensors)", path,
                            name, entries.size()));
  return it->second;
}

torch::Tensor copy_out(const SafeTensorsFile::Entry& e, const uint8_t* data) {
  auto out = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
  if (e.end > e.begin) std::memcpy(out.data_ptr(), data + e.begin, e.end - e.begin);
  return out;
}
}  // namespace

std::vector<int64_t> SafeTensorsFile::shape(const std::string& name) const {
  return find_entry(entries_, path_, name).shape;
}

std::string SafeTensorsFile::dtype_name(const std::string& name) const {
  return find_entry(entries_, path_, name).dtype_name;
}

int64_t SafeTensorsFile::numel(const std::string& name) const {
  const Entry& e = find_entry(entries_, path_, name);
  for (auto d : e.shape)
    if (d == 0) return 0;
  return static_cast<int64_t>((e.end - e.begin) / c10::elementSize(e.dtype));
}

torch::Tensor SafeTensorsFile::view(const std::string& name) const {
  const Entry& e = find_entry(entries_, path_, name);
  const uint8_t* p = data_ + e.begin;
  const size_t elsize = c10::elementSize(e.dtype);
  // Empty tensors own nothing; a tensor whose offset is not a multiple of its element size
  // (legal in the format, never produced by save_safetensors) is copied, not aliased.
  if (e.end == e.begin || reinterpret_cast<uintptr_t>(p) % elsize != 0) return copy_out(e, data_);
  std::shared_ptr<void> keep = mapping_;
  return torch::from_blob(
      const_cast<uint8_t*>(p), e.shape, [keep](void*) mutable { keep.reset(); },
      torch::TensorOptions().dtype(e.dtype));
}

TensorMap SafeTensorsFile::load() const {
  TensorMap out;
  for (const auto& [name, e] : entries_) out.emplace(name, copy_out(e, data_));
  return out;
}

TensorMap load_safetensors(const std::string& path, Metadata* metadata) {
  SafeTensorsFile file(path);
  if (metadata) *metadata = file.metadata();
  return file.load();
}

// ---- writer --------------------------------------------------------------------------------

namespace {

// Writes all of [p, p+n), retrying partial writes and EINTR. Returns 0 or an errno.
int write_all(int fd, const void* p, size_t n) {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

}  // namespace

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const Metadata& metadata) {
  const auto fail = [&](const std::string& what) {
    return Error(fmt::format("safetensors '{}': {}", path, what));
  };

  // Validate and prepare every tensor before touching the filesystem.
  struct Item {
    const std::string* name;
    torch::Tensor t;  // contiguous, CPU
    const DtypeInfo* dt;
    size_t nbytes;
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) throw fail(fmt::format("'{}' is not a valid tensor name", name));
    if (!tensor.defined()) throw fail(fmt::format("tensor '{}' is undefined", name));
    if (tensor.layout() != torch::kStrided || tensor.is_quantized())
      throw fail(fmt::format("tensor '{}': only dense (strided) tensors can be stored", name));
    const DtypeInfo* dt = find_dtype(tensor.scalar_type());
    if (!dt)
      throw fail(fmt::format("tensor '{}': dtype {} cannot be stored (supported: {})", name,
                             c10::toString(tensor.scalar_type()), kSupportedDtypes));
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    items.push_back({&name, t, dt, static_cast<size_t>(t.numel()) * dt->size});
  }
  // Larger elements first, then by name: deterministic, and every tensor's offset is a
  // multiple of its element size (sizes are powers of two), so view() never has to copy.
  // The reference implementation orders by dtype then name for the same reason.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.dt->size != b.dt->size) return a.dt->size > b.dt->size;
    return *a.name < *b.name;
  });

  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  size_t offset = 0;
  for (const auto& it : items) {
    header[*it.name] = {{"dtype", it.dt->name},
                        {"shape", it.t.sizes().vec()},
                        {"data_offsets", {offset, offset + it.nbytes}}};
    offset += it.nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // e.g. a name or metadata value that is not UTF-8
    throw fail(fmt::format("cannot encode header: {}", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // pad with spaces, as the reference does
  const uint64_t header_len = text.size();

  AtomicOutput out(path);
  const std::string& tmp = out.temp_path();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw fail(fmt::format("cannot create '{}': {}", tmp, errno_str(errno)));
  const auto abort_with = [&](const std::string& step, int err) {
    if (fd >= 0) ::close(fd);
    return fail(fmt::format("{} '{}': {}", step, tmp, errno_str(err)));
  };  // `out` removes the temporary as the error leaves this function
  if (int err = write_all(fd, &header_len, 8)) throw abort_with("cannot write", err);
  if (int err = write_all(fd, text.data(), text.size())) throw abort_with("cannot write", err);
  for (const auto& it : items)
    if (it.nbytes > 0)
      if (int err = write_all(fd, it.t.data_ptr(), it.nbytes))
        throw abort_with("cannot write", err);
  const int close_rc = ::close(fd);
  fd = -1;
  if (close_rc != 0) throw abort_with("cannot close", errno);
  out.commit();  // fsync, rename over `path`, fsync of the directory
}

}  // namespace dit
