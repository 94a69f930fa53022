// Typed exceptions thrown by library code; launcher/ catches them, prints one message, exits non-zero.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dptrain {

// Base of every error dptrain raises on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A config file or --set override that is malformed: the message names file, line and key.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A data file that is missing, truncated or does not match its header: the message names the file.
class DataError : public Error {
 public:
  using Error::Error;
};

// Tensor or layer shapes that do not fit together.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A communication failure or a peer that did not answer in time.
class CommError : public Error {
 public:
  using Error::Error;
};

// Workers that stopped answering (killed, or their node failed), found by heartbeats: the message
// names each of them (rank, pid, host) and what this worker was waiting in.
class PeerLostError : public CommError {
 public:
  PeerLostError(const std::string& message, std::vector<size_t> ranks) : CommError(message), ranks_(std::move(ranks)) {}
  // The lost ranks, in the order they were found.
  const std::vector<size_t>& ranks() const { return ranks_; }

 private:
  std::vector<size_t> ranks_;
};

// A planned allocation larger than the memory the run may use, or than its input file can hold: the
// message names what was being allocated, how much, and the config key that set its size.
class AllocationError : public Error {
 public:
  AllocationError(const std::string& message, std::string key) : Error(message), key_(std::move(key)) {}
  // The config key that set the size ("train.batch_size", "data.shape"), or empty.
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// A command line that cannot be carried out as given.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A checkpoint file that cannot be written, read or trusted: the message names the file, what is wrong
// and what to do about it.
class CheckpointError : public Error {
 public:
  using Error::Error;
  CheckpointError(const std::string& path, const std::string& reason)
      : Error(path + ": " + reason), path_(path), reason_(reason) {}

  // The file concerned; empty when the error was built from a message alone.
  const std::string& path() const { return path_; }
  // The message without the file name ("truncated file ..."), or the whole message.
  std::string reason() const { return reason_.empty() ? what() : reason_; }

 private:
  std::string path_;
  std::string reason_;
};

}  // namespace dptrain
