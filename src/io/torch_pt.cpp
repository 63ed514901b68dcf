// torch.save reader. Three layers:
//  1. the zip archive, through libtorch's caffe2::serialize::PyTorchStreamReader on our own
//     ReadAdapterInterface (pread: a record is read when a tensor needs it, never the whole
//     file), after our own scan of the central directory (read_zip_directory says why);
//  2. data.pkl, through a restricted pickle machine (Unpickler): it builds dicts, lists,
//     tuples, sets, numbers, strings and bytes; GLOBAL only ever names a class or function, which
//     we recognise by name (OrderedDict, the tensor rebuild functions, set) or keep as an opaque
//     value; nothing is imported, constructed or called;
//  3. the walk from the unpickled root to the tensors (Walker): key paths, storages read once
//     and shared by their views, every size / stride / offset checked against its storage.
#include "dit/torch_pt.h"

#include "dit/error.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <caffe2/serialize/versions.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

// Storage records hold the tensors' bytes in the saving machine's order; torch.save on every
// platform PyTorch supports writes little-endian (PyTorch 2.x also writes a "byteorder" record,
// checked below), and we hand the bytes to torch as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "dit torch.save reading assumes a little-endian host");

namespace dit {
namespace {

// Limits that keep a malformed file from costing more than a real checkpoint would. A DiT-XL/2
// training checkpoint's data.pkl is ~100 KB with ~2,000 tensors; its keys are < 100 bytes.
constexpr uint64_t kMaxPickleBytes = 256ull << 20;
constexpr uint64_t kMaxCentralDirectoryBytes = 256ull << 20;
constexpr int kMaxNesting = 100;               // nesting of containers on the way to a leaf
constexpr size_t kMaxWalkNodes = 1'000'000;  // values visited (shared sub-objects count again)
constexpr size_t kMaxKeyBytes = 1024;        // one key path
constexpr size_t kMaxOutputKeyBytes = 64ull << 20;  // all key paths and notes together
constexpr size_t kMaxRank = 64;
constexpr size_t kMaxGlobalLine = 4096;  // "module\n" or "name\n" of GLOBAL
constexpr int kMaxCallDepth = 16;        // _rebuild_from_type_v2 wrapping another rebuild call
constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate cannot expand more than this
constexpr size_t kMaxNoteBytes = 200;    // a string value quoted in `skipped`

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const uint8_t* p) {
  return static_cast<uint64_t>(le32(p)) | (static_cast<uint64_t>(le32(p + 4)) << 32);
}

// The first line of a libtorch error (c10::Error messages carry a C++ context after it).
std::string first_line(const char* what) {
  std::string s(what ? what : "");
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// ---------------------------------------------------------------------------------------------
// 1. The file and the zip archive

// pread on one descriptor. miniz calls read() through C code, so it must never throw: a short
// count is how it learns of an error (and reports it through c10::Error, converted below).
class PosixFile final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit PosixFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      throw Error(fmt::format("{}: cannot read: {}", path, std::strerror(err)));
    }
    if (!S_ISREG(st.st_mode)) {  // a directory, a device: the words of the safetensors reader
      ::close(fd_);
      throw Error(fmt::format("{}: not a regular file", path));
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  size_t size() const override { return static_cast<size_t>(size_); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/ = "") const override {
    size_t done = 0;
    while (done < n && pos < size_ && done < size_ - pos) {
      const ssize_t r = ::pread(fd_, static_cast<char*>(buf) + done, n - done,
                                static_cast<off_t>(pos + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }
  // Exactly n bytes at pos, or false.
  bool read_exact(uint64_t pos, void* buf, size_t n) const {
    return pos <= size_ && n <= size_ - pos && read(pos, buf, n) == n;
  }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

struct ZipEntry {
  uint16_t method = 0;  // 0 stored (what torch.save writes), 8 deflate
  uint64_t compressed = 0, size = 0, local_offset = 0;
};

struct ZipDirectory {
  std::string prefix;  // the archive folder with its '/': "archive/"
  std::unordered_map<std::string, ZipEntry> entries;  // by full name
};

Error archive_error(const std::string& path, const std::string& what) {
  return Error(fmt::format("{}: not a readable torch.save zip archive: {}", path, what));
}

// Our own scan of the zip central directory, for what PyTorch 1.13's reader does not tell:
// a record's declared size. getRecord() allocates the size the central directory declares before
// extracting, and for a deflated record that can be any 32/64-bit number, so we check it against
// what the pickle expects first. The scan also mirrors the reader constructor's checks on the
// archive folder and the version record: when those fail inside the 1.13 constructor, miniz's
// state has been allocated and is never freed.
ZipDirectory read_zip_directory(const PosixFile& f, const std::string& path) {
  const uint64_t size = f.size();
  if (size < 22) throw archive_error(path, "shorter than a zip end record (truncated?)");
  const uint64_t tail_len = std::min<uint64_t>(size, 22 + 65535);
  std::vector<uint8_t> tail(tail_len);
  if (!f.read_exact(size - tail_len, tail.data(), tail_len))
    throw archive_error(path, "cannot read the end of the file");
  // The last end-of-central-directory signature, as miniz finds it.
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i)
    if (le32(&tail[i]) == 0x06054b50) {
      at = i;
      break;
    }
  if (at < 0) throw archive_error(path, "no zip end-of-central-directory record (truncated file?)");
  const uint8_t* e = &tail[at];
  uint64_t count = le16(e + 10), cd_size = le32(e + 12), cd_offset = le32(e + 16);
  const uint64_t eocd = size - tail_len + static_cast<uint64_t>(at);
  uint8_t loc[20];
  if (eocd >= 20 && f.read_exact(eocd - 20, loc, 20) && le32(loc) == 0x07064b50) {
    // zip64 (archives over 4 GB or 65,535 records): the real numbers are in the zip64 record.
    uint8_t z[56];
    if (!f.read_exact(le64(loc + 8), z, 56) || le32(z) != 0x06064b50)
      throw archive_error(path, "zip64 end-of-central-directory record missing or damaged");
    count = le64(z + 32);
    cd_size = le64(z + 40);
    cd_offset = le64(z + 48);
  }
  if (cd_offset > size || cd_size > size - cd_offset)
    throw archive_error(path, "central directory outside the file");
  if (cd_size > kMaxCentralDirectoryBytes)
    throw archive_error(path, fmt::format("central directory of {} bytes (more than {})", cd_size,
                                          kMaxCentralDirectoryBytes));
  if (count == 0) throw archive_error(path, "no records");
  if (count > cd_size / 46)
    throw archive_error(path, "record count larger than the central directory");
  std::vector<uint8_t> cd(cd_size);
  if (!f.read_exact(cd_offset, cd.data(), cd_size))
    throw archive_error(path, "cannot read the central directory");

  ZipDirectory dir;
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_size - p < 46 || le32(&cd[p]) != 0x02014b50)
      throw archive_error(path, fmt::format("central directory record {}: bad header", i));
    const uint8_t* h = &cd[p];
    ZipEntry z;
    z.method = le16(h + 10);
    z.compressed = le32(h + 20);
    z.size = le32(h + 24);
    z.local_offset = le32(h + 42);
    const size_t n = le16(h + 28), m = le16(h + 30), k = le16(h + 32);
    if (cd_size - p - 46 < n + m + k)
      throw archive_error(path, fmt::format("central directory record {}: truncated", i));
    std::string name(reinterpret_cast<const char*>(h + 46), n);
    // zip64 extended information: 64-bit values for the fields saturated at 0xFFFFFFFF, in
    // this order.
    for (const uint8_t *x = h + 46 + n, *end = x + m; end - x >= 4;) {
      const uint16_t id = le16(x), len = le16(x + 2);
      if (len > end - x - 4) break;
      if (id == 1) {
        const uint8_t* q = x + 4;
        size_t left = len;
        for (uint64_t* v : {&z.size, &z.compressed, &z.local_offset}) {
          if (*v != 0xFFFFFFFFu) continue;
          if (left < 8)
            throw archive_error(path, fmt::format("record '{}': zip64 field truncated", name));
          *v = le64(q);
          q += 8;
          left -= 8;
        }
      }
      x += 4 + len;
    }
    if (i == 0) {
      const size_t slash = name.find('/');
      if (slash == std::string::npos || slash == 0)
        throw archive_error(path, fmt::format("first record '{}' is not in a folder (torch.save "
                                              "writes <archive>/data.pkl)", name));
      dir.prefix = name.substr(0, slash + 1);
    }
    if (!dir.entries.emplace(name, z).second)
      throw archive_error(path, fmt::format("two records named '{}'", name));
    p += 46 + n + m + k;
  }
  return dir;
}

const ZipEntry* find_record(const ZipDirectory& dir, const std::string& name) {
  const auto it = dir.entries.find(dir.prefix + name);
  return it == dir.entries.end() ? nullptr : &it->second;
}

// The version record, checked as PyTorch 1.13's reader constructor checks it (a number in
// [kMinSupportedFileFormatVersion, kMaxSupportedFileFormatVersion]) so that the constructor
// never fails after miniz has allocated its state.
void check_version_record(const PosixFile& f, const ZipDirectory& dir, const std::string& path) {
  const ZipEntry* v = find_record(dir, ".data/version");
  if (!v) v = find_record(dir, "version");
  if (!v) throw archive_error(path, fmt::format("no record '{}version'", dir.prefix));
  if (v->method != 0 || v->size != v->compressed || v->size > 64)
    throw archive_error(path, "the version record is not a short stored record");
  uint8_t lh[30];
  if (!f.read_exact(v->local_offset, lh, 30) || le32(lh) != 0x04034b50)
    throw archive_error(path, "the version record's local header is damaged");
  std::string text(v->size, '\0');
  if (!f.read_exact(v->local_offset + 30 + le16(lh + 26) + le16(lh + 28), text.data(), v->size))
    throw archive_error(path, "cannot read the version record");
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  uint64_t version = 0;
  size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 18; ++i, ++digits)
    version = version * 10 + static_cast<uint64_t>(text[i] - '0');
  if (digits == 0 || (i < text.size() && text[i] >= '0' && text[i] <= '9') ||
      version < caffe2::serialize::kMinSupportedFileFormatVersion ||
      version > caffe2::serialize::kMaxSupportedFileFormatVersion)
    throw archive_error(path, fmt::format("version record '{}': expected a number from {} to {}",
                                          first_line(text.c_str()),
                                          caffe2::serialize::kMinSupportedFileFormatVersion,
                                          caffe2::serialize::kMaxSupportedFileFormatVersion));
}

class Archive {
 public:
  explicit Archive(const std::string& path)
      : path_(path), file_(std::make_shared<PosixFile>(path)) {
    uint8_t magic[4] = {0, 0, 0, 0};
    const size_t n = file_->read(0, magic, 4);
    if (n < 4 || std::memcmp(magic, "PK\x03\x04", 4) != 0) {
      if (n >= 1 && magic[0] == 0x80)  // a pickle PROTO opcode: the legacy format
        throw Error(fmt::format(
            "{}: legacy torch.save format (PyTorch < 1.6, or _use_new_zipfile_serialization="
            "False) is not supported: re-save it with torch.save from PyTorch 1.6 or later",
            path));
      throw archive_error(path, "it does not start with a zip header (PK\\x03\\x04)");
    }
    dir_ = read_zip_directory(*file_, path);
    check_version_record(*file_, dir_, path);
    try {
      reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(
          std::static_pointer_cast<caffe2::serialize::ReadAdapterInterface>(file_));
    } catch (const c10::Error& e) {
      throw archive_error(path, first_line(e.msg().c_str()));
    } catch (const std::exception& e) {
      throw archive_error(path, first_line(e.what()));
    }
  }

  bool has(const std::string& name) const { return find_record(dir_, name) != nullptr; }

  // The bytes of record `name` (relative to the archive folder). Its declared size must equal
  // `expected` when that is given, and be at most `max_bytes`; both are checked before libtorch
  // allocates the record. `what` says who wants it ("tensor 'ema.x'").
  std::pair<at::DataPtr, size_t> record(const std::string& name, std::optional<uint64_t> expected,
                                        uint64_t max_bytes, const std::string& what) {
    const ZipEntry* e = find_record(dir_, name);
    if (!e)
      throw Error(fmt::format("{}: {}: record '{}{}' is missing", path_, what, dir_.prefix, name));
    if (expected && e->size != *expected)
      throw Error(fmt::format("{}: {}: record '{}{}' holds {} bytes, expected {} (numel * "
                              "element size)", path_, what, dir_.prefix, name, e->size, *expected));
    if (e->size > max_bytes)
      throw Error(fmt::format("{}: {}: record '{}{}' holds {} bytes, more than the {} allowed",
                              path_, what, dir_.prefix, name, e->size, max_bytes));
    if (e->method != 0 && e->size / kMaxDeflateRatio > e->compressed)
      throw Error(fmt::format("{}: {}: record '{}{}' declares {} bytes from {} compressed bytes, "
                              "more than deflate can produce", path_, what, dir_.prefix, name,
                              e->size, e->compressed));
    try {
      auto [ptr, n] = reader_->getRecord(name);
      if (n != e->size)
        throw Error(fmt::format("{}: {}: record '{}{}': read {} bytes, expected {}", path_, what,
                                dir_.prefix, name, n, e->size));
      return {std::move(ptr), n};
    } catch (const Error&) {
      throw;
    } catch (const c10::Error& err) {
      throw Error(fmt::format("{}: {}: cannot read record '{}{}': {}", path_, what, dir_.prefix,
                              name, first_line(err.msg().c_str())));
    } catch (const std::exception& err) {
      throw Error(fmt::format("{}: {}: cannot read record '{}{}': {}", path_, what, dir_.prefix,
                              name, first_line(err.what())));
    }
  }

 private:
  std::string path_;
  std::shared_ptr<PosixFile> file_;
  ZipDirectory dir_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
};

// ---------------------------------------------------------------------------------------------
// 2. The restricted pickle machine

enum class Kind : uint8_t {
  None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Set,
  Global,   // a class or function named by GLOBAL / STACK_GLOBAL, never imported
  Opaque,   // an object of a class we do not know, or the result of calling one
  Storage,  // a persistent id: ('storage', torch.<Type>Storage, key, location, numel)
  Tensor,   // a call to torch._utils._rebuild_tensor_v2 / _v3, built by the walk
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::Global: return "class or function";
    case Kind::Opaque: return "opaque object";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

using Ref = uint32_t;  // index into the machine's value arena (no reference counting: cycles,
                       // which a pickle can build, then cost nothing and leak nothing)

struct Value {
  Kind kind = Kind::None;
  bool flag = false;  // Bool: the value; Opaque: it stands for a tensor we cannot build
  int64_t i = 0;      // Int; Storage: numel; Tensor: rebuild version (2 or 3)
  double f = 0;       // Float
  std::string s;      // Str / Bytes; Global / Opaque: "module.name"; Storage: record key
  std::string type;   // Storage: the storage class ("FloatStorage")
  std::vector<Ref> items;  // Tuple / List / Set; Dict: k0, v0, k1, v1, ...; Tensor: its args
  // Dict: simple key -> position of its pair in items, so that a repeated key replaces the
  // value as in Python.
  std::unique_ptr<std::unordered_map<std::string, size_t>> index;
};

// A dict key's identity for the keys Python compares by value (1 == 1.0 == True).
std::optional<std::string> simple_key(const Value& k) {
  switch (k.kind) {
    case Kind::Str: return "s" + k.s;
    case Kind::Bytes: return "b" + k.s;
    case Kind::Int: return "i" + std::to_string(k.i);
    case Kind::Bool: return std::string(k.flag ? "i1" : "i0");
    case Kind::None: return std::string("n");
    case Kind::Float:
      if (std::isfinite(k.f) && k.f == std::floor(k.f) && std::fabs(k.f) < 9.2e18)
        return "i" + std::to_string(static_cast<int64_t>(k.f));
      return fmt::format("f{}", k.f);
    default: return std::nullopt;
  }
}

// Well-formed UTF-8, surrogates allowed (Python decodes BINUNICODE with 'surrogatepass').
bool valid_utf8(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n;) {
    const uint8_t c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (n - i < len) return false;
    for (size_t j = 1; j < len; ++j) {
      if ((p[i + j] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  // Runs to STOP; returns the pickled object.
  Ref run();
  const Value& at(Ref r) const { return values_[r]; }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(fmt::format("{}: data.pkl offset {}: {}", path_, op_pos_, msg));
  }
  Ref make(Kind k) {
    values_.emplace_back();
    values_.back().kind = k;
    return static_cast<Ref>(values_.size() - 1);
  }
  Value& val(Ref r) { return values_[r]; }
  const uint8_t* take(size_t n, const char* what) {
    if (size_ - pos_ < n)
      fail(fmt::format("{} needs {} bytes, {} left (truncated pickle?)", what, n, size_ - pos_));
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  Ref pop() {
    if (stack_.size() <= fence()) fail("stack underflow");
    const Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref top() {
    if (stack_.size() <= fence()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Ref str(Kind kind, size_t n, bool utf8) {
    const uint8_t* p = take(n, kind == Kind::Str ? "string" : "bytes");
    if (utf8 && !valid_utf8(p, n)) fail("string is not valid UTF-8");
    const Ref r = make(kind);
    val(r).s.assign(reinterpret_cast<const char*>(p), n);
    return r;
  }
  Ref integer(const uint8_t* p, size_t n);
  std::string line(const char* what);
  Ref global(std::string module, const std::string& name);
  Ref opaque(const std::string& what, bool tensor = false) {
    const Ref r = make(Kind::Opaque);
    val(r).s = what;
    val(r).flag = tensor;
    return r;
  }
  Ref call(Ref fn, Ref args, int depth = 0);
  Ref newobj(Ref cls, Ref args);
  Ref persistent_load(Ref pid);
  void dict_set(Ref dict, const std::vector<Ref>& kv, const char* op);
  void add_items(Ref target, Kind kind, std::vector<Ref> items, const char* op);
  Ref dict_from(Ref pairs);

  const uint8_t* data_;
  size_t size_, pos_ = 0, op_pos_ = 0;
  const std::string& path_;
  std::deque<Value> values_;  // the arena; a deque keeps references stable as it grows
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK
  std::unordered_map<uint64_t, Ref> memo_;
};

Ref Unpickler::integer(const uint8_t* p, size_t n) {
  // Little-endian two's complement of n bytes (LONG1 / LONG4); beyond int64: BigInt.
  const bool negative = n > 0 && (p[n - 1] & 0x80);
  for (size_t j = 8; j < n; ++j)
    if (p[j] != (negative ? 0xFF : 0x00)) return make(Kind::BigInt);
  if (n > 8 && ((p[7] & 0x80) != 0) != negative) return make(Kind::BigInt);
  uint64_t u = negative ? ~0ull : 0;
  for (size_t j = 0; j < std::min<size_t>(n, 8); ++j) {
    u &= ~(0xFFull << (8 * j));
    u |= static_cast<uint64_t>(p[j]) << (8 * j);
  }
  const Ref r = make(Kind::Int);
  std::memcpy(&val(r).i, &u, 8);
  return r;
}

std::string Unpickler::line(const char* what) {
  const size_t left = size_ - pos_;
  const void* nl = std::memchr(data_ + pos_, '\n', std::min(left, kMaxGlobalLine + 1));
  if (!nl)
    fail(fmt::format("{}: no newline within {} bytes", what, std::min(left, kMaxGlobalLine)));
  const size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nl) - (data_ + pos_));
  std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
  pos_ += n + 1;
  return s;
}

Ref Unpickler::global(std::string module, const std::string& name) {
  // Protocol 2 from Python 3 writes Python 2's module names (pickle's fix_imports).
  if (module == "__builtin__") module = "builtins";
  if (module == "copy_reg") module = "copyreg";
  const Ref r = make(Kind::Global);
  val(r).s = module + "." + name;
  return r;
}

Ref Unpickler::dict_from(Ref pairs) {
  const Ref d = make(Kind::Dict);
  const Value& p = val(pairs);
  if (p.kind != Kind::List && p.kind != Kind::Tuple)
    fail(fmt::format("collections.OrderedDict: argument is a {}, expected a list of pairs",
                     kind_name(p.kind)));
  const std::vector<Ref> items = p.items;
  for (const Ref it : items) {
    const Value& kv = val(it);
    if ((kv.kind != Kind::Tuple && kv.kind != Kind::List) || kv.items.size() != 2)
      fail("collections.OrderedDict: expected (key, value) pairs");
    dict_set(d, kv.items, "OrderedDict");
  }
  return d;
}

// What REDUCE does: the callables we interpret, by name; anything else gives an opaque value.
Ref Unpickler::call(Ref fn, Ref args, int depth) {
  const Value& f = val(fn);
  if (f.kind == Kind::Opaque) return opaque(f.s, f.flag);
  if (f.kind != Kind::Global) fail(fmt::format("REDUCE: cannot call a {}", kind_name(f.kind)));
  const std::string name = f.s;
  if (val(args).kind != Kind::Tuple)
    fail(fmt::format("REDUCE: the arguments of {} are a {}, expected a tuple", name,
                     kind_name(val(args).kind)));
  const std::vector<Ref> a = val(args).items;
  auto expect_args = [&](size_t lo, size_t hi) {
    if (a.size() < lo || a.size() > hi)
      fail(fmt::format("{}: {} arguments, expected {}", name, a.size(),
                       lo == hi ? std::to_string(lo) : fmt::format("{} or {}", lo, hi)));
  };
  if (name == "collections.OrderedDict") {
    expect_args(0, 1);
    return a.empty() ? make(Kind::Dict) : dict_from(a[0]);
  }
  if (name == "builtins.set" || name == "builtins.frozenset") {
    expect_args(0, 1);
    const Ref s = make(Kind::Set);
    if (!a.empty()) {
      const Value& src = val(a[0]);
      if (src.kind != Kind::List && src.kind != Kind::Tuple && src.kind != Kind::Set)
        fail(fmt::format("{}: argument is a {}, expected a list", name, kind_name(src.kind)));
      std::vector<Ref> items = src.items;
      val(s).items = std::move(items);
    }
    return s;
  }
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]);
  // v3 (PyTorch 2.x, for dtypes added since): ..., backward_hooks, dtype[, metadata].
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor_v3") {
    const bool v3 = name.back() == '3';
    expect_args(v3 ? 7 : 6, v3 ? 8 : 7);
    const Ref t = make(Kind::Tensor);
    val(t).i = v3 ? 3 : 2;
    val(t).items = a;
    return t;
  }
  // nn.Parameter(data, requires_grad, backward_hooks[, state]): the tensor is its data.
  if (name == "torch._utils._rebuild_parameter") {
    expect_args(3, 3);
    return a[0];
  }
  if (name == "torch._utils._rebuild_parameter_with_state") {
    expect_args(4, 4);
    return a[0];
  }
  // A tensor with Python attributes or of a subclass: (rebuild function, class, its args,
  // state); the tensor is what the rebuild function gives.
  if (name == "torch._tensor._rebuild_from_type_v2") {
    expect_args(4, 4);
    if (depth >= kMaxCallDepth)
      fail(fmt::format("{} nested more than {} deep", name, kMaxCallDepth));
    return call(a[0], a[2], depth + 1);
  }
  // Other tensor rebuilders (quantized, sparse, nested, meta ...): an error if a walk reaches it.
  if (name.rfind("torch._utils._rebuild_", 0) == 0) return opaque(name, true);
  return opaque(name + "(...)");
}

Ref Unpickler::newobj(Ref cls, Ref args) {
  const Value& c = val(cls);
  if (val(args).kind != Kind::Tuple)
    fail(fmt::format("NEWOBJ: arguments are a {}, expected a tuple", kind_name(val(args).kind)));
  if (c.kind == Kind::Opaque) return opaque(c.s, c.flag);
  if (c.kind != Kind::Global) fail(fmt::format("NEWOBJ: the class is a {}", kind_name(c.kind)));
  if (c.s == "collections.OrderedDict") return make(Kind::Dict);  // items follow by SETITEMS
  return opaque(c.s);
}

Ref Unpickler::persistent_load(Ref pid) {
  const Value& p = val(pid);
  auto is = [&](size_t j, Kind k) { return val(p.items[j]).kind == k; };
  if (p.kind != Kind::Tuple || p.items.size() != 5 || !is(0, Kind::Str) ||
      val(p.items[0]).s != "storage" || !is(1, Kind::Global) || !is(2, Kind::Str) ||
      !is(3, Kind::Str) || !is(4, Kind::Int))
    fail("persistent id: expected ('storage', torch.<Type>Storage, key, location, numel)");
  const std::string& type = val(p.items[1]).s;
  const std::string& key = val(p.items[2]).s;
  if (type.rfind("torch.", 0) != 0)
    fail(fmt::format("persistent id: storage type '{}' is not a torch storage class", type));
  if (key.empty() || key.size() > 256 || key.find('\0') != std::string::npos)
    fail("persistent id: storage key is empty, longer than 256 bytes or holds a NUL");
  if (val(p.items[4]).i < 0)
    fail(fmt::format("persistent id: storage '{}' has numel {}", key, val(p.items[4]).i));
  // (the location, 'cpu' or 'cuda:0', does not matter: we always load to the CPU)
  const int64_t numel = val(p.items[4]).i;
  const Ref s = make(Kind::Storage);
  val(s).s = key;
  val(s).type = type.substr(6);
  val(s).i = numel;
  return s;
}

// SETITEM(S): into a dict; on an opaque object (a dict subclass we do not know) nothing happens.
void Unpickler::dict_set(Ref dict, const std::vector<Ref>& kv, const char* op) {
  Value& d = val(dict);
  if (d.kind == Kind::Opaque) return;
  if (d.kind != Kind::Dict) fail(fmt::format("{} on a {}, expected a dict", op, kind_name(d.kind)));
  if (kv.size() % 2) fail(fmt::format("{}: an odd number of items", op));
  if (!d.index) d.index = std::make_unique<std::unordered_map<std::string, size_t>>();
  for (size_t j = 0; j < kv.size(); j += 2) {
    if (const auto k = simple_key(val(kv[j]))) {
      const auto [it, added] = d.index->emplace(*k, d.items.size());
      if (!added) {
        d.items[it->second + 1] = kv[j + 1];
        continue;
      }
    }
    d.items.push_back(kv[j]);
    d.items.push_back(kv[j + 1]);
  }
}

void Unpickler::add_items(Ref target, Kind kind, std::vector<Ref> items, const char* op) {
  Value& t = val(target);
  if (t.kind == Kind::Opaque) return;
  if (t.kind != kind)
    fail(fmt::format("{} on a {}, expected a {}", op, kind_name(t.kind), kind_name(kind)));
  t.items.insert(t.items.end(), items.begin(), items.end());
}

Ref Unpickler::run() {
  while (true) {
    op_pos_ = pos_;
    const uint8_t op = *take(1, "opcode");
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t v = *take(1, "PROTO");
        if (v > 5) fail(fmt::format("unsupported pickle protocol {}", v));
        break;
      }
      case 0x95: {  // FRAME: only a read-ahead hint
        const uint64_t n = le64(take(8, "FRAME"));
        if (n > size_ - pos_) fail(fmt::format("FRAME of {} bytes, {} left", n, size_ - pos_));
        break;
      }
      case '.': {  // STOP
        const Ref r = pop();
        return r;
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0':  // POP: the top item, or the top MARK when nothing is above it (as CPython)
        if (stack_.size() > fence()) stack_.pop_back();
        else if (!marks_.empty()) marks_.pop_back();
        else fail("POP on an empty stack");
        break;
      case '1': pop_mark(); break;          // POP_MARK
      case '2': stack_.push_back(top()); break;  // DUP
      case '}': stack_.push_back(make(Kind::Dict)); break;   // EMPTY_DICT
      case ']': stack_.push_back(make(Kind::List)); break;   // EMPTY_LIST
      case ')': stack_.push_back(make(Kind::Tuple)); break;  // EMPTY_TUPLE
      case 0x8f: stack_.push_back(make(Kind::Set)); break;   // EMPTY_SET
      case 'd': {  // DICT
        const std::vector<Ref> items = pop_mark();
        const Ref d = make(Kind::Dict);
        dict_set(d, items, "DICT");
        stack_.push_back(d);
        break;
      }
      case 'l': case 't': case 0x91: {  // LIST, TUPLE, FROZENSET
        std::vector<Ref> items = pop_mark();
        const Ref r = make(op == 'l' ? Kind::List : op == 't' ? Kind::Tuple : Kind::Set);
        val(r).items = std::move(items);
        stack_.push_back(r);
        break;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
        const size_t n = op - 0x84u;
        if (stack_.size() - fence() < n) fail("stack underflow");
        const Ref r = make(Kind::Tuple);
        val(r).items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        stack_.push_back(r);
        break;
      }
      case 's': {  // SETITEM
        const Ref v = pop(), k = pop();
        dict_set(top(), {k, v}, "SETITEM");
        break;
      }
      case 'u': {  // SETITEMS
        const std::vector<Ref> items = pop_mark();
        dict_set(top(), items, "SETITEMS");
        break;
      }
      case 'a': {  // APPEND
        const Ref v = pop();
        add_items(top(), Kind::List, {v}, "APPEND");
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Ref> items = pop_mark();
        add_items(top(), Kind::List, std::move(items), "APPENDS");
        break;
      }
      case 0x90: {  // ADDITEMS
        std::vector<Ref> items = pop_mark();
        add_items(top(), Kind::Set, std::move(items), "ADDITEMS");
        break;
      }
      case 'X': stack_.push_back(str(Kind::Str, le32(take(4, "BINUNICODE")), true)); break;
      case 0x8c: stack_.push_back(str(Kind::Str, *take(1, "SHORT_BINUNICODE"), true)); break;
      case 0x8d: {  // BINUNICODE8
        const uint64_t n = le64(take(8, "BINUNICODE8"));
        if (n > size_ - pos_) fail(fmt::format("string of {} bytes, {} left", n, size_ - pos_));
        stack_.push_back(str(Kind::Str, static_cast<size_t>(n), true));
        break;
      }
      case 'T': {  // BINSTRING (Python 2 str): kept as text
        const int32_t n = static_cast<int32_t>(le32(take(4, "BINSTRING")));
        if (n < 0) fail("BINSTRING with a negative length");
        stack_.push_back(str(Kind::Str, static_cast<size_t>(n), false));
        break;
      }
      case 'U': stack_.push_back(str(Kind::Str, *take(1, "SHORT_BINSTRING"), false)); break;
      case 'B': stack_.push_back(str(Kind::Bytes, le32(take(4, "BINBYTES")), false)); break;
      case 'C': stack_.push_back(str(Kind::Bytes, *take(1, "SHORT_BINBYTES"), false)); break;
      case 0x8e: {  // BINBYTES8
        const uint64_t n = le64(take(8, "BINBYTES8"));
        if (n > size_ - pos_) fail(fmt::format("bytes of {} bytes, {} left", n, size_ - pos_));
        stack_.push_back(str(Kind::Bytes, static_cast<size_t>(n), false));
        break;
      }
      case 'J': {  // BININT
        const Ref r = make(Kind::Int);
        val(r).i = static_cast<int32_t>(le32(take(4, "BININT")));
        stack_.push_back(r);
        break;
      }
      case 'K': {  // BININT1
        const Ref r = make(Kind::Int);
        val(r).i = *take(1, "BININT1");
        stack_.push_back(r);
        break;
      }
      case 'M': {  // BININT2
        const Ref r = make(Kind::Int);
        val(r).i = le16(take(2, "BININT2"));
        stack_.push_back(r);
        break;
      }
      case 0x8a: {  // LONG1
        const size_t n = *take(1, "LONG1");
        stack_.push_back(integer(take(n, "LONG1"), n));
        break;
      }
      case 0x8b: {  // LONG4
        const int32_t n = static_cast<int32_t>(le32(take(4, "LONG4")));
        if (n < 0) fail("LONG4 with a negative length");
        stack_.push_back(integer(take(static_cast<size_t>(n), "LONG4"), static_cast<size_t>(n)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const uint8_t* p = take(8, "BINFLOAT");
        uint64_t u = 0;
        for (int j = 0; j < 8; ++j) u = (u << 8) | p[j];
        const Ref r = make(Kind::Float);
        std::memcpy(&val(r).f, &u, 8);
        stack_.push_back(r);
        break;
      }
      case 'N': stack_.push_back(make(Kind::None)); break;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        const Ref r = make(Kind::Bool);
        val(r).flag = op == 0x88;
        stack_.push_back(r);
        break;
      }
      case 'q': memo_[*take(1, "BINPUT")] = top(); break;
      case 'r': memo_[le32(take(4, "LONG_BINPUT"))] = top(); break;
      case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
      case 'h': case 'j': {  // BINGET, LONG_BINGET
        const uint64_t k = op == 'h' ? *take(1, "BINGET") : le32(take(4, "LONG_BINGET"));
        const auto it = memo_.find(k);
        if (it == memo_.end()) fail(fmt::format("memo entry {} is not defined", k));
        stack_.push_back(it->second);
        break;
      }
      case 'c': {  // GLOBAL
        std::string module = line("GLOBAL module");
        const std::string name = line("GLOBAL name");
        stack_.push_back(global(std::move(module), name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const Ref name = pop(), module = pop();
        if (val(name).kind != Kind::Str || val(module).kind != Kind::Str)
          fail("STACK_GLOBAL: module and name must be strings");
        stack_.push_back(global(val(module).s, val(name).s));
        break;
      }
      case 'R': {  // REDUCE
        const Ref args = pop(), fn = pop();
        stack_.push_back(call(fn, args));
        break;
      }
      case 0x81: {  // NEWOBJ
        const Ref args = pop(), cls = pop();
        stack_.push_back(newobj(cls, args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX (the keyword arguments are not used)
        pop();
        const Ref args = pop(), cls = pop();
        stack_.push_back(newobj(cls, args));
        break;
      }
      case 'b': {  // BUILD: set an object's state. OrderedDict's (state_dict()'s _metadata),
                   // a tensor's Python attributes and opaque objects' state are not needed.
        pop();
        const Kind k = val(top()).kind;
        if (k != Kind::Dict && k != Kind::Opaque && k != Kind::Tensor)
          fail(fmt::format("BUILD on a {}", kind_name(k)));
        break;
      }
      case 'Q': {  // BINPERSID
        const Ref pid = pop();
        stack_.push_back(persistent_load(pid));
        break;
      }
      default:
        fail(fmt::format("unsupported pickle opcode 0x{:02x}{}", op,
                         op >= 0x20 && op < 0x7f ? fmt::format(" ('{}')", static_cast<char>(op))
                                                 : std::string()));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3. From the unpickled object to the tensors

struct TypeInfo {
  const char* name;
  torch::ScalarType type;
  int64_t size;
};

// torch.<Name>Storage classes (persistent ids) and torch.<dtype> names (_rebuild_tensor_v3).
constexpr TypeInfo kStorageTypes[] = {
    {"FloatStorage", torch::kFloat, 4},     {"DoubleStorage", torch::kDouble, 8},
    {"HalfStorage", torch::kHalf, 2},       {"BFloat16Storage", torch::kBFloat16, 2},
    {"LongStorage", torch::kLong, 8},       {"IntStorage", torch::kInt, 4},
    {"ShortStorage", torch::kShort, 2},     {"CharStorage", torch::kChar, 1},
    {"ByteStorage", torch::kByte, 1},       {"BoolStorage", torch::kBool, 1},
    {"ComplexFloatStorage", torch::kComplexFloat, 8},
    {"ComplexDoubleStorage", torch::kComplexDouble, 16},
    {"UntypedStorage", torch::kByte, 1},
};
constexpr TypeInfo kTorchDtypes[] = {
    {"torch.float32", torch::kFloat, 4},   {"torch.float", torch::kFloat, 4},
    {"torch.float64", torch::kDouble, 8},  {"torch.double", torch::kDouble, 8},
    {"torch.float16", torch::kHalf, 2},    {"torch.half", torch::kHalf, 2},
    {"torch.bfloat16", torch::kBFloat16, 2},
    {"torch.int64", torch::kLong, 8},      {"torch.long", torch::kLong, 8},
    {"torch.int32", torch::kInt, 4},       {"torch.int", torch::kInt, 4},
    {"torch.int16", torch::kShort, 2},     {"torch.short", torch::kShort, 2},
    {"torch.int8", torch::kChar, 1},       {"torch.uint8", torch::kByte, 1},
    {"torch.bool", torch::kBool, 1},
    {"torch.complex64", torch::kComplexFloat, 8},
    {"torch.complex128", torch::kComplexDouble, 16},
};

template <size_t N>
const TypeInfo* find_type(const TypeInfo (&table)[N], const std::string& name) {
  for (const auto& t : table)
    if (name == t.name) return &t;
  return nullptr;
}

class Walker {
 public:
  Walker(const Unpickler& vm, Archive& archive, const std::string& path, TensorMap& out,
         Metadata& notes)
      : vm_(vm), archive_(archive), path_(path), out_(out), notes_(notes) {}

  void walk(Ref r, const std::string& key, int depth);

 private:
  struct StorageData {
    std::string type;
    int64_t numel = 0;
    const TypeInfo* info = nullptr;
    torch::Tensor bytes;  // uint8 [nbytes] on the record's buffer
  };

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(fmt::format("{}: tensor '{}': {}", path_, key, what));
  }
  void emit_key(const std::string& key) {
    output_bytes_ += key.size();
    if (output_bytes_ > kMaxOutputKeyBytes)
      throw Error(fmt::format("{}: more than {} bytes of key paths (shared sub-objects repeated?)",
                              path_, kMaxOutputKeyBytes));
  }
  void note(const std::string& key, std::string what) {
    emit_key(key);
    output_bytes_ += what.size();
    notes_[key] = std::move(what);
  }
  std::string join(const std::string& prefix, const std::string& k) const {
    std::string key = prefix.empty() ? k : prefix + "." + k;
    if (key.size() > kMaxKeyBytes)
      throw Error(fmt::format("{}: key path '{}...' is longer than {} bytes", path_,
                              key.substr(0, 64), kMaxKeyBytes));
    return key;
  }
  std::optional<std::string> key_text(const Value& k) const {
    switch (k.kind) {
      case Kind::Str: return k.s;
      case Kind::Int: return std::to_string(k.i);
      case Kind::Bool: return std::string(k.flag ? "True" : "False");
      case Kind::None: return std::string("None");
      case Kind::Float: return fmt::format("{}", k.f);
      default: return std::nullopt;
    }
  }
  int64_t int_arg(Ref r, const std::string& key, const char* field) const {
    const Value& v = vm_.at(r);
    if (v.kind != Kind::Int)
      fail(key, fmt::format("{} is a {}, expected an int", field, kind_name(v.kind)));
    return v.i;
  }
  std::vector<int64_t> int_tuple(Ref r, const std::string& key, const char* field) const {
    const Value& v = vm_.at(r);
    if (v.kind != Kind::Tuple && v.kind != Kind::List)
      fail(key, fmt::format("{} is a {}, expected a tuple of ints", field, kind_name(v.kind)));
    if (v.items.size() > kMaxRank)
      fail(key,
           fmt::format("{} has {} dimensions (more than {})", field, v.items.size(), kMaxRank));
    std::vector<int64_t> out;
    for (size_t j = 0; j < v.items.size(); ++j) {
      const int64_t x = int_arg(v.items[j], key, field);
      if (x < 0) fail(key, fmt::format("{}[{}] = {}, expected >= 0", field, j, x));
      out.push_back(x);
    }
    return out;
  }
  const StorageData& storage(const Value& s, const std::string& key);
  torch::Tensor tensor(const Value& t, const std::string& key);

  const Unpickler& vm_;
  Archive& archive_;
  const std::string& path_;
  TensorMap& out_;
  Metadata& notes_;
  std::unordered_map<std::string, StorageData> storages_;  // by record key: views share one
  size_t nodes_ = 0, output_bytes_ = 0;
};

const Walker::StorageData& Walker::storage(const Value& s, const std::string& key) {
  const auto it = storages_.find(s.s);
  if (it != storages_.end()) {
    if (it->second.type != s.type || it->second.numel != s.i)
      fail(key, fmt::format("storage '{}' is {} x {} here and {} x {} for another tensor", s.s,
                            s.type, s.i, it->second.type, it->second.numel));
    return it->second;
  }
  StorageData d;
  d.type = s.type;
  d.numel = s.i;
  d.info = find_type(kStorageTypes, s.type);
  if (!d.info) fail(key, fmt::format("storage type torch.{} is not supported", s.type));
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(s.i, d.info->size, &nbytes))
    fail(key, fmt::format("storage '{}': numel {} overflows", s.s, s.i));
  auto [ptr, n] = archive_.record("data/" + s.s, static_cast<uint64_t>(nbytes),
                                  static_cast<uint64_t>(nbytes), fmt::format("tensor '{}'", key));
  if (n == 0) {
    d.bytes = torch::empty({0}, torch::kByte);
  } else {
    // The tensor owns the record's buffer: the deleter keeps it alive until the last view goes.
    auto holder = std::make_shared<at::DataPtr>(std::move(ptr));
    d.bytes = torch::from_blob(holder->get(), {static_cast<int64_t>(n)},
                               [holder](void*) {}, torch::kByte);
  }
  if (d.info->type == torch::kBool) {
    const uint8_t* b = d.bytes.data_ptr<uint8_t>();
    for (size_t j = 0; j < n; ++j)
      if (b[j] > 1)
        fail(key,
             fmt::format("BOOL storage '{}' holds byte {} at {}, expected 0 or 1", s.s, b[j], j));
  }
  return storages_.emplace(s.s, std::move(d)).first->second;
}

torch::Tensor Walker::tensor(const Value& t, const std::string& key) {
  const std::vector<Ref>& a = t.items;
  const Value& st = vm_.at(a[0]);
  if (st.kind != Kind::Storage)
    fail(key, fmt::format("storage is a {}, expected a persistent storage reference",
                          kind_name(st.kind)));
  const StorageData& sd = storage(st, key);
  torch::ScalarType dtype = sd.info->type;
  int64_t elsize = sd.info->size;
  if (t.i == 3) {  // the dtype is an argument; the storage is bytes
    const Value& dt = vm_.at(a[6]);
    const TypeInfo* info = dt.kind == Kind::Global ? find_type(kTorchDtypes, dt.s) : nullptr;
    if (!info)
      fail(key,
           fmt::format(
               "dtype {} is not supported",
               dt.kind == Kind::Global || dt.kind == Kind::Opaque ? dt.s : kind_name(dt.kind)));
    dtype = info->type;
    elsize = info->size;
  }
  const int64_t nbytes = sd.bytes.numel();
  if (nbytes % elsize != 0)
    fail(key, fmt::format("storage '{}' of {} bytes is not a whole number of {}-byte elements",
                          st.s, nbytes, elsize));
  const int64_t length = nbytes / elsize;
  const int64_t offset = int_arg(a[1], key, "storage_offset");
  if (offset < 0) fail(key, fmt::format("storage_offset = {}, expected >= 0", offset));
  const std::vector<int64_t> size = int_tuple(a[2], key, "size");
  const std::vector<int64_t> stride = int_tuple(a[3], key, "stride");
  if (size.size() != stride.size())
    fail(key, fmt::format("size has {} dimensions, stride {}", size.size(), stride.size()));
  // numel, even of an empty tensor, and the last element's index must fit int64.
  int64_t numel = 1, nonzero = 1, last = offset;
  for (size_t j = 0; j < size.size(); ++j) {
    if (size[j] == 0) numel = 0;
    else if (__builtin_mul_overflow(nonzero, size[j], &nonzero))
      fail(key, fmt::format("size [{}] overflows", fmt::join(size, ", ")));
  }
  if (numel == 0)
    return torch::empty_strided(size, stride, torch::TensorOptions().dtype(dtype));
  for (size_t j = 0; j < size.size(); ++j) {
    int64_t step = 0;
    if (__builtin_mul_overflow(size[j] - 1, stride[j], &step) ||
        __builtin_add_overflow(last, step, &last))
      fail(key, fmt::format("size [{}] with stride [{}] overflows", fmt::join(size, ", "),
                            fmt::join(stride, ", ")));
  }
  if (last >= length)
    fail(key, fmt::format("size [{}], stride [{}] and storage_offset {} reach element {}, but "
                          "storage '{}' holds {} elements", fmt::join(size, ", "),
                          fmt::join(stride, ", "), offset, last, st.s, length));
  try {
    return sd.bytes.view(dtype).as_strided(size, stride, offset);
  } catch (const c10::Error& e) {
    fail(key, first_line(e.msg().c_str()));
  }
}

void Walker::walk(Ref r, const std::string& key, int depth) {
  if (++nodes_ > kMaxWalkNodes)
    throw Error(fmt::format("{}: more than {} values (shared sub-objects repeated?)", path_,
                            kMaxWalkNodes));
  if (depth > kMaxNesting)
    throw Error(fmt::format("{}: '{}': nested deeper than {} levels (a cyclic structure?)", path_,
                            key.substr(0, 200), kMaxNesting));
  const Value& v = vm_.at(r);
  switch (v.kind) {
    case Kind::Tensor: {
      torch::Tensor t = tensor(v, key);
      emit_key(key);
      if (!out_.emplace(key, std::move(t)).second)
        throw Error(fmt::format("{}: two tensors have the key path '{}'", path_, key));
      return;
    }
    case Kind::Dict:
      for (size_t j = 0; j + 1 < v.items.size(); j += 2) {
        const Value& k = vm_.at(v.items[j]);
        if (const auto text = key_text(k))
          walk(v.items[j + 1], join(key, *text), depth + 1);
        else
          note(join(key, fmt::format("<{} key>", kind_name(k.kind))),
               "<skipped: unsupported key type>");
      }
      return;
    case Kind::List:
    case Kind::Tuple:
      for (size_t j = 0; j < v.items.size(); ++j)
        walk(v.items[j], join(key, std::to_string(j)), depth + 1);
      return;
    case Kind::Set: note(key, fmt::format("<set, {} items>", v.items.size())); return;
    case Kind::None: note(key, "None"); return;
    case Kind::Bool: note(key, v.flag ? "True" : "False"); return;
    case Kind::Int: note(key, std::to_string(v.i)); return;
    case Kind::BigInt: note(key, "<int beyond 64 bits>"); return;
    case Kind::Float: note(key, fmt::format("{}", v.f)); return;
    case Kind::Str:
      note(key, v.s.size() <= kMaxNoteBytes ? v.s : v.s.substr(0, kMaxNoteBytes) + "...");
      return;
    case Kind::Bytes: note(key, fmt::format("<bytes, {}>", v.s.size())); return;
    case Kind::Global: note(key, fmt::format("<{}>", v.s.substr(0, kMaxNoteBytes))); return;
    case Kind::Storage: note(key, fmt::format("<storage '{}'>", v.s)); return;
    case Kind::Opaque:
      if (v.flag)
        fail(key, fmt::format("built by {}, which is not supported (quantized, sparse or other "
                              "special tensors)", v.s));
      note(key, fmt::format("<{}>", v.s.substr(0, kMaxNoteBytes)));
      return;
  }
}

}  // namespace

bool is_torch_zip_file(const std::string& path) {
  const PosixFile f(path);
  uint8_t magic[4];
  return f.read(0, magic, 4) == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

TensorMap load_torch_pt(const std::string& path, Metadata* skipped) {
  Archive archive(path);
  if (archive.has("byteorder")) {  // PyTorch 2.x: "little" or "big"
    auto [ptr, n] = archive.record("byteorder", std::nullopt, 16, "byte order");
    const std::string order(static_cast<const char*>(ptr.get()), n);
    if (order != "little")
      throw Error(fmt::format("{}: byteorder record says '{}', expected 'little' (big-endian "
                              "files are not supported)", path, first_line(order.c_str())));
  }
  auto [pkl, n] = archive.record("data.pkl", std::nullopt, kMaxPickleBytes, "pickle");
  Unpickler vm(static_cast<const uint8_t*>(pkl.get()), n, path);
  const Ref root = vm.run();
  TensorMap out;
  Metadata notes;
  Walker(vm, archive, path, out, notes).walk(root, "", 0);
  if (skipped) *skipped = std::move(notes);
  return out;
}

}  // namespace dit
