// Files and folders of a run that other users must not be able to plant, replace or redirect: owner-only
// folders, a refusal of folders that others can write, temporary files created exclusively (never through
// a symlink) and published by rename, and bounded reads that never block on a FIFO.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

namespace dptrain {

// Who may read a file dptrain writes.
enum class FileAccess {
  OwnerOnly,  // 0600 whatever the umask: checkpoints, the run folder's files
  Umask,      // 0666 less the umask, as most programs create files: data sets made for others to read
};

// Creates `path` and every missing folder above it, each new one owner-only (0700, whatever the umask).
// Folders that exist are left as they are. Throws Error naming the folder that could not be made.
void make_private_directories(const std::string& path);

// Throws ConfigError "WHAT PATH: other users can write this folder (mode 0777) ... chmod go-w PATH" when
// group or others may write `path`, or when it is not a folder. A symlink is judged by its target, which
// must be a folder owned by this user. A missing `path` passes (dptrain creates it owner-only).
// `what` says where the folder was named, e.g. "configs/x.yaml: checkpoint.dir".
void check_private_folder(const std::string& path, const std::string& what);

// check_private_folder, then make_private_directories: the folder a run writes into, refused when others
// can write it and created owner-only when missing. ConfigError "WHAT PATH: ..." either way.
void prepare_private_folder(const std::string& path, const std::string& what);

// The mode bits (07777) of `path` itself (lstat), or nullopt when it does not exist.
std::optional<mode_t> path_mode(const std::string& path);

// A temporary file beside `final_path`, named ".NAME.tmp-PID-RANDOM", created exclusively
// (O_CREAT|O_EXCL|O_NOFOLLOW) so a planted file or symlink at that name is never opened. Removed when
// destroyed unless published.
class PrivateTempFile {
 public:
  // Throws Error naming the folder when no temporary file can be created there.
  explicit PrivateTempFile(const std::string& final_path, FileAccess access = FileAccess::OwnerOnly);
  ~PrivateTempFile();
  PrivateTempFile(const PrivateTempFile&) = delete;
  PrivateTempFile& operator=(const PrivateTempFile&) = delete;

  const std::string& path() const { return path_; }
  const std::string& final_path() const { return final_path_; }
  // The open descriptor, or -1 once closed.
  int fd() const { return fd_; }
  // Writes all of `text`; throws Error naming the file.
  void write(const std::string& text);
  // Closes the descriptor (a writer that reopens the file by name, like HDF5, calls this first).
  void close();
  // Flushes the file to disk (reopening it by name when closed) and renames it over `final_path`; a
  // symlink at `final_path` is replaced, not followed. Throws Error naming the file.
  void publish();

 private:
  std::string final_path_;
  std::string path_;
  int fd_ = -1;
  bool published_ = false;
};

// The prefix every temporary name for `final_path` starts with: ".NAME.tmp-".
std::string temp_name_prefix(const std::string& final_path);

// Writes `text` to `path` through a PrivateTempFile: whole or not at all, owner-only, never through a symlink.
void write_private_file(const std::string& path, const std::string& text);

// Opens `path` for appending, creating it owner-only; refuses a symlink, a FIFO or anything but a regular
// file. Returns the descriptor; throws Error naming the file.
int open_private_append(const std::string& path);

// The text of the regular file `path`, at most `max_bytes` long; nullopt when it does not exist. A symlink,
// a FIFO, a folder or a longer file gives nullopt with `problem` saying so (when given).
std::optional<std::string> read_small_file(const std::string& path, size_t max_bytes, std::string* problem = nullptr);

}  // namespace dptrain
