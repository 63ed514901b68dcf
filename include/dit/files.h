#pragma once
// Output files that are never half-written: every writer (safetensors, PNG, H5MD, SDF, JSON
// reports, the autotune cache) builds its file under a temporary name in the same directory and
// renames it over the final name only once it is complete. A crash, a kill or a write error
// leaves the previous file (or none) and no temporary behind.
#include <string>

namespace dit {

// One output file under construction:
//
//   AtomicOutput out(path);                  // nothing is created yet
//   write whatever writer you like to out.temp_path(), close it (flush HDF5, close streams)
//   out.commit();                            // fsync the file, rename it over `path`, fsync the directory
//
// The temporary name is "<path>.<pid>.<n>.tmp" (n counts per process), so concurrent writers of
// the same path in one or several processes never share one. Destroying an AtomicOutput that
// was not committed removes the temporary (whatever wrote it must have closed it by then, or at
// least must not reopen it). Errors are dit::Error naming `path` and the errno text.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string path);
  // A resumable output (a long screen): the temporary has the fixed name "<path>.partial", is
  // not removed when it exists (the caller continues it), and keep() leaves it for a later run.
  // A second process on the same path is kept out by an OutputLock, not by the name.
  static AtomicOutput resumable(std::string path);
  ~AtomicOutput();
  AtomicOutput(AtomicOutput&& other) noexcept;
  AtomicOutput& operator=(AtomicOutput&& other) noexcept;
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }
  bool committed() const { return committed_; }

  // Makes the temporary durable (fsync), renames it over path() and makes the rename durable
  // (fsync of the directory, where the file system allows it). Throws dit::Error naming path()
  // when the temporary is missing or cannot be synced or renamed; the temporary is removed then.
  void commit();
  // Removes the temporary now (what the destructor does when commit() was not called).
  void discard() noexcept;
  // Leaves the temporary where it is when this object is destroyed (an interrupted resumable
  // output, continued by a later run).
  void keep() noexcept { kept_ = true; }

 private:
  AtomicOutput() = default;
  std::string path_, temp_;
  bool committed_ = false, kept_ = false;
};

// An exclusive lock on "<output>.lock" for the lifetime of the object: a second process writing
// the same output fails at once with a dit::Error naming it (batch jobs, resumable screens). The
// lock file is removed when the lock is released.
class OutputLock {
 public:
  explicit OutputLock(const std::string& output);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

// Writes `bytes` to `path` through an AtomicOutput. (Also declared in dit/runtime.h, where
// it lived first.)
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace dit
