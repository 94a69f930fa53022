#include "runtime/core/private_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "runtime/core/errors.h"

namespace dptrain {

namespace fs = std::filesystem;

namespace {

// Tries at most this many random names before giving up on a folder full of clashes.
constexpr int kTempAttempts = 16;

std::string errno_text(int error) { return std::strerror(error); }

std::string octal_mode(mode_t mode) {
  char text[16];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Twelve random characters from [a-z0-9]: unpredictable to another user.
std::string random_suffix() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string suffix(12, 'x');
  for (char& c : suffix) c = kAlphabet[pick(device)];
  return suffix;
}

// The folder `path` is in, "." for a bare name.
std::string folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

mode_t creation_mode(FileAccess access) { return access == FileAccess::OwnerOnly ? 0600 : 0666; }

}  // namespace

void make_private_directories(const std::string& path) {
  if (path.empty()) return;
  fs::path so_far;
  for (const fs::path& part : fs::path(path).lexically_normal()) {
    so_far /= part;
    if (part.empty() || part == "." || part == ".." || part == so_far.root_path()) continue;
    if (::mkdir(so_far.c_str(), 0700) == 0) {
      if (::chmod(so_far.c_str(), 0700) != 0) {  // the umask may have taken bits the owner needs
        throw Error(so_far.string() + ": cannot make the new folder owner-only (" + errno_text(errno) + ")");
      }
      continue;
    }
    const int error = errno;
    struct stat info;
    if (error == EEXIST && ::stat(so_far.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) continue;
    throw Error(so_far.string() + ": cannot create the folder (" +
                (error == EEXIST ? std::string("a file of that name is in the way") : errno_text(error)) + ")");
  }
}

std::optional<mode_t> path_mode(const std::string& path) {
  struct stat info;
  if (::lstat(path.c_str(), &info) != 0) return std::nullopt;
  return info.st_mode & 07777;
}

void check_private_folder(const std::string& path, const std::string& what) {
  if (path.empty()) return;
  struct stat info;
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return;
    throw ConfigError(what + " " + path + ": cannot check the folder (" + errno_text(errno) + ")");
  }
  if (S_ISLNK(info.st_mode)) {
    if (::stat(path.c_str(), &info) != 0) {
      throw ConfigError(what + " " + path + ": a symlink that leads nowhere (" + errno_text(errno) +
                        "); point it at a folder or give the folder itself");
    }
    if (info.st_uid != ::geteuid()) {
      throw ConfigError(what + " " + path + ": a symlink to a folder of another user; give a folder you own");
    }
  }
  if (!S_ISDIR(info.st_mode)) {
    throw ConfigError(what + " " + path + ": is not a folder; give a folder (dptrain creates it when missing)");
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw ConfigError(what + " " + path + ": other users can write this folder (mode " + octal_mode(info.st_mode) +
                      "), so they could plant or replace the run's files; run `chmod go-w " + path +
                      "` or choose a folder only you can write");
  }
}

void prepare_private_folder(const std::string& path, const std::string& what) {
  check_private_folder(path, what);
  try {
    make_private_directories(path);
  } catch (const Error& e) {
    throw ConfigError(what + " " + path + ": " + e.what());
  }
}

std::string temp_name_prefix(const std::string& final_path) {
  const fs::path target(final_path);
  return "." + target.filename().string() + ".tmp-";
}

PrivateTempFile::PrivateTempFile(const std::string& final_path, FileAccess access) : final_path_(final_path) {
  const fs::path folder = fs::path(final_path).parent_path();
  const std::string stem = temp_name_prefix(final_path) + std::to_string(::getpid()) + "-";
  int error = 0;
  for (int attempt = 0; attempt < kTempAttempts; ++attempt) {
    const std::string candidate = (folder / (stem + random_suffix())).string();
    fd_ = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, creation_mode(access));
    if (fd_ >= 0) {
      path_ = candidate;
      // The umask only takes bits away; owner-only files must also not keep more than 0600.
      if (access == FileAccess::OwnerOnly) ::fchmod(fd_, 0600);
      return;
    }
    error = errno;
    if (error != EEXIST) break;
  }
  throw Error(final_path + ": cannot create a temporary file in " + folder_of(final_path) + " (" + errno_text(error) +
              "); check that the folder exists, has space and is writable");
}

PrivateTempFile::~PrivateTempFile() {
  close();
  if (!published_ && !path_.empty()) ::unlink(path_.c_str());
}

void PrivateTempFile::write(const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path_ + ": cannot write (" + errno_text(errno) + "); check the folder's space");
    done += static_cast<size_t>(n);
  }
}

void PrivateTempFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void PrivateTempFile::publish() {
  if (fd_ < 0) fd_ = ::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd_ < 0 || ::fsync(fd_) != 0) {
    throw Error(path_ + ": cannot sync to disk (" + errno_text(errno) + ")");
  }
  close();
  if (::rename(path_.c_str(), final_path_.c_str()) != 0) {
    throw Error(final_path_ + ": cannot rename " + path_ + " into place (" + errno_text(errno) + ")");
  }
  published_ = true;
}

void write_private_file(const std::string& path, const std::string& text) {
  PrivateTempFile temp(path);
  temp.write(text);
  temp.publish();
}

int open_private_append(const std::string& path) {
  // O_NONBLOCK: a FIFO planted at `path` fails at once instead of waiting for a reader.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    throw Error(path + ": cannot open for writing (" +
                (error == ELOOP ? std::string("it is a symlink; give the file itself") : errno_text(error)) + ")");
  }
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw Error(path + ": is not a regular file; give a file name");
  }
  ::fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
  return fd;
}

std::optional<std::string> read_small_file(const std::string& path, size_t max_bytes, std::string* problem) {
  auto fail = [&](const std::string& why) -> std::optional<std::string> {
    if (problem) *problem = why;
    return std::nullopt;
  };
  if (problem) problem->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return fail(errno == ELOOP ? "a symlink, not a file" : "cannot open it (" + errno_text(errno) + ")");
  }
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    ::close(fd);
    return fail(std::to_string(info.st_size) + " bytes, more than the " + std::to_string(max_bytes) + " it may hold");
  }
  std::string text;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return fail("cannot read it (" + errno_text(error) + ")");
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > max_bytes) {
      ::close(fd);
      return fail("more than the " + std::to_string(max_bytes) + " bytes it may hold");
    }
  }
  ::close(fd);
  return text;
}

}  // namespace dptrain
