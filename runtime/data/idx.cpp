#include "runtime/data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"

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

// What an IDX header says: the dimensions, the header's length and the payload's.
struct IdxLayout {
  Shape dims;
  size_t header_bytes = 0;
  size_t payload_bytes = 0;
};

// Bytes of header the first four bytes announce (4 + 4 per dimension).
size_t header_bytes_of(const uint8_t* bytes) { return 4 + 4 * size_t{bytes[3]}; }

// Checks the header at the start of `bytes` (at least header_bytes_of(bytes) of them) and returns its layout.
IdxLayout parse_header(const std::string& file, const std::vector<uint8_t>& bytes) {
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
  IdxLayout layout;
  layout.header_bytes = header_bytes_of(bytes.data());
  layout.payload_bytes = 1;
  for (size_t d = 0; d < ndims; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    const size_t dim = size_t{p[0]} << 24 | size_t{p[1]} << 16 | size_t{p[2]} << 8 | size_t{p[3]};
    layout.dims.push_back(dim);
    if (dim != 0 && layout.payload_bytes > std::numeric_limits<size_t>::max() / dim) {
      throw DataError(file + ": IDX dimensions " + to_string(layout.dims) + " are too large");
    }
    layout.payload_bytes *= dim;
  }
  return layout;
}

// The bytes of `path`, which must be a regular file (not a directory, device or FIFO); its size is
// checked against the memory budget before it is read.
std::vector<uint8_t> read_whole_file(const std::string& path) {
  size_t size = 0;
  std::string why;
  if (!regular_file_size(path, &size, &why) && !why.empty()) {
    std::string msg = path + ": " + why;
    const std::string hint = idx_install_hint(path);
    if (!hint.empty()) msg += " (" + hint + ")";
    throw DataError(msg + "; expected an IDX file");
  }
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    const int err = errno;
    std::string msg = path + ": cannot open: " + std::strerror(err);
    const std::string hint = idx_install_hint(path);
    if (!hint.empty()) msg += " (" + hint + ")";
    throw DataError(msg);
  }
  reserve(size, "the contents of " + path, "");
  std::vector<uint8_t> bytes(size);
  const size_t got = size > 0 ? std::fread(bytes.data(), 1, size, f.get()) : 0;
  if (std::ferror(f.get())) throw DataError(path + ": read error: " + std::strerror(errno));
  bytes.resize(got);  // the file shrank while it was read: the header check names what is missing
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& bytes) { return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

// Deflate expands data at most 1032 times; with gzip headers and some slack, no IDX file inflates
// beyond this many times its compressed size.
constexpr size_t kMaxInflateRatio = 1040;

// Bytes inflated beyond the declared size that are still kept, so that a few trailing bytes are
// reported by parse_idx with their count; a stream going further stops at once.
constexpr size_t kTrailingSlack = size_t{1} << 16;

// Inflates one or more concatenated gzip members in bounded chunks. The IDX header, as soon as it is
// inflated, sets the size expected: it is checked against what the compressed bytes can hold and the
// memory budget before the output is allocated, and inflating stops with an error once the stream
// goes beyond it.
std::vector<uint8_t> gunzip(const std::string& path, const std::vector<uint8_t>& in) {
  const size_t n = in.size();
  std::vector<uint8_t> out;
  size_t limit = 0;  // total bytes the header declares; 0 until the header is known
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw DataError(path + ": cannot initialise zlib");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  std::vector<uint8_t> chunk(1 << 16);
  size_t in_pos = 0;
  for (;;) {
    const size_t in_chunk = std::min<size_t>(n - in_pos, std::numeric_limits<uInt>::max());
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    const size_t produced = chunk.size() - zs.avail_out;
    auto beyond = [&] {
      return DataError(path + ": the gzip stream inflates beyond the " + std::to_string(limit) +
                       " bytes its IDX header declares (dimensions " + to_string(parse_header(path, out).dims) +
                       "); the file is damaged or not an IDX file");
    };
    if (limit > 0 && out.size() + produced > limit + kTrailingSlack) throw beyond();
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(produced));
    if (limit == 0 && out.size() >= 4 && out.size() >= header_bytes_of(out.data())) {
      const IdxLayout layout = parse_header(path, out);
      limit = layout.header_bytes + layout.payload_bytes;
      if (limit - layout.header_bytes > kMaxInflateRatio * n) {
        throw DataError(path + ": the IDX header declares dimensions " + to_string(layout.dims) + " (" +
                        byte_size_text(layout.payload_bytes) + "), more than " + std::to_string(n) +
                        " compressed bytes can hold; the file is damaged or truncated");
      }
      reserve(limit, "the data of " + path + " (dimensions " + to_string(layout.dims) + ")", "");
      if (out.size() > limit + kTrailingSlack) throw beyond();
      out.reserve(limit);
    }
    if (rc == Z_STREAM_END) {
      if (in_pos == n) break;
      if (n - in_pos >= 2 && in[in_pos] == 0x1f && in[in_pos + 1] == 0x8b) {
        inflateReset(&zs);  // another gzip member follows
        continue;
      }
      throw DataError(path + ": " + std::to_string(n - in_pos) + " unexpected bytes after the end of the gzip stream");
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && in_pos == n && produced == 0) {
      throw DataError(path + ": truncated gzip stream: the file ends after " + std::to_string(n) +
                      " compressed bytes, before the end of the data (incomplete download?)");
    }
    if (rc == Z_BUF_ERROR) continue;
    throw DataError(path + ": corrupt gzip data: " + (zs.msg ? zs.msg : "zlib error " + std::to_string(rc)));
  }
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
  const size_t header = header_bytes_of(bytes.data());
  if (bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0x08 && bytes[3] != 0 && bytes.size() < header) {
    throw DataError(file + ": truncated: the IDX header declares " + std::to_string(bytes[3]) + " dimensions (" +
                    std::to_string(header) + " header bytes), but the file holds " + std::to_string(bytes.size()) +
                    " bytes");
  }
  const IdxLayout layout = parse_header(file, bytes);
  IdxArray out;
  out.file = file;
  out.dims = layout.dims;
  const size_t expected = layout.payload_bytes;
  const size_t found = bytes.size() - header;
  const char* what = layout.dims.size() == 1 ? "label" : "image";
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
