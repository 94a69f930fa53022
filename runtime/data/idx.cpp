#include "runtime/data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

const char* const kFashionDir = "/usr/share/datasets/fashion-mnist";

// Closes a FILE* when it goes out of scope.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string hex_bytes(const std::vector<uint8_t>& bytes, size_t count) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < count && i < bytes.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", bytes[i]);
    out += (i ? " " : "") + std::string(buf);
  }
  return out;
}

const char* idx_type_name(uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "not an IDX type";
  }
}

std::vector<uint8_t> read_whole_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    const int err = errno;
    std::string msg = path + ": cannot open: " + std::strerror(err);
    const std::string hint = idx_install_hint(path);
    if (!hint.empty()) msg += " (" + hint + ")";
    throw DataError(msg);
  }
  std::vector<uint8_t> bytes;
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    const long size = std::ftell(f.get());
    if (size > 0) bytes.reserve(static_cast<size_t>(size));
    std::rewind(f.get());
  }
  uint8_t buf[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f.get())) > 0) bytes.insert(bytes.end(), buf, buf + got);
  if (std::ferror(f.get())) throw DataError(path + ": read error: " + std::strerror(errno));
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& bytes) { return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

// Inflates one or more concatenated gzip members.
std::vector<uint8_t> gunzip(const std::string& path, const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out;
  // The trailer's ISIZE is the uncompressed size mod 2^32: a good first guess for the buffer.
  const size_t n = in.size();
  size_t guess =
      n >= 4 ? (size_t{in[n - 4]} | size_t{in[n - 3]} << 8 | size_t{in[n - 2]} << 16 | size_t{in[n - 1]} << 24) : 0;
  if (guess < n || guess > 1100 * n) guess = 4 * n;
  out.resize(guess);

  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw DataError(path + ": cannot initialise zlib");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  size_t in_pos = 0, out_pos = 0;
  for (;;) {
    if (out_pos == out.size()) out.resize(out.size() * 2 + (1 << 16));
    const size_t in_chunk = std::min<size_t>(n - in_pos, std::numeric_limits<uInt>::max());
    const size_t out_chunk = std::min<size_t>(out.size() - out_pos, std::numeric_limits<uInt>::max());
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    out_pos += out_chunk - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (in_pos == n) break;
      if (n - in_pos >= 2 && in[in_pos] == 0x1f && in[in_pos + 1] == 0x8b) {
        inflateReset(&zs);  // another gzip member follows
        continue;
      }
      throw DataError(path + ": " + std::to_string(n - in_pos) + " unexpected bytes after the end of the gzip stream");
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && in_pos == n) {
      throw DataError(path + ": truncated gzip stream: the file ends after " + std::to_string(n) +
                      " compressed bytes, before the end of the data (incomplete download?)");
    }
    if (rc == Z_BUF_ERROR) continue;  // output full: grow and go on
    throw DataError(path + ": corrupt gzip data: " + (zs.msg ? zs.msg : "zlib error " + std::to_string(rc)));
  }
  out.resize(out_pos);
  out.shrink_to_fit();
  return out;
}

}  // namespace

std::string idx_install_hint(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).lexically_normal().parent_path();
  if (dir == std::filesystem::path(kFashionDir)) {
    return "Fashion-MNIST is not installed: run `apt-get install dataset-fashion-mnist` or scripts/install-deps.sh";
  }
  return "";
}

IdxArray parse_idx(const std::string& file, std::vector<uint8_t> bytes) {
  if (bytes.size() < 4) {
    throw DataError(file + ": not an IDX file: only " + std::to_string(bytes.size()) +
                    " bytes, too short for the 4-byte header");
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    throw DataError(file + ": not an IDX file: bad magic '" + hex_bytes(bytes, 4) + "' (expected 00 00 08 NDIMS)");
  }
  const uint8_t type = bytes[2];
  if (type != 0x08) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", type);
    throw DataError(file + ": unsupported IDX data type " + buf + " (" + idx_type_name(type) +
                    "); only 0x08 (unsigned byte) is supported");
  }
  const size_t ndims = bytes[3];
  if (ndims == 0) throw DataError(file + ": IDX header declares 0 dimensions");
  const size_t header = 4 + 4 * ndims;
  if (bytes.size() < header) {
    throw DataError(file + ": truncated: the IDX header declares " + std::to_string(ndims) + " dimensions (" +
                    std::to_string(header) + " header bytes), but the file holds " + std::to_string(bytes.size()) +
                    " bytes");
  }
  IdxArray out;
  out.file = file;
  size_t expected = 1;
  for (size_t d = 0; d < ndims; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    const size_t dim = size_t{p[0]} << 24 | size_t{p[1]} << 16 | size_t{p[2]} << 8 | size_t{p[3]};
    out.dims.push_back(dim);
    if (dim != 0 && expected > std::numeric_limits<size_t>::max() / dim) {
      throw DataError(file + ": IDX dimensions " + to_string(out.dims) + " are too large");
    }
    expected *= dim;
  }
  const size_t found = bytes.size() - header;
  const char* what = ndims == 1 ? "label" : "image";
  if (found < expected) {
    throw DataError(file + ": truncated: expected " + std::to_string(expected) + " bytes of " + what +
                    " data for dimensions " + to_string(out.dims) + ", found " + std::to_string(found));
  }
  if (found > expected) {
    throw DataError(file + ": " + std::to_string(found - expected) + " unexpected bytes after the " +
                    std::to_string(expected) + " bytes of " + what + " data for dimensions " + to_string(out.dims));
  }
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
  out.data = std::move(bytes);
  return out;
}

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_whole_file(path);
  if (is_gzip(bytes)) bytes = gunzip(path, bytes);
  return parse_idx(path, std::move(bytes));
}

}  // namespace dptrain
