// Writes the valid seeds of the fuzz corpora (tests/fuzz/corpus/) with the project's own writers:
//   fuzz_make_seeds OUTPUT_DIR     writes OUTPUT_DIR/<target>/<seed> for idx, image, hdf5_dataset, checkpoint.
// The config and run_dir seeds are text, written by hand; the broken seeds are cut from these.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/data/hdf5_writer.h"
#include "runtime/data/image_io.h"

namespace fs = std::filesystem;
using namespace dptrain;

namespace {

// A few tiny 8-bit images, normalised as write_hdf5_splits wants them (pixel / 255).
class TinySet : public Dataset {
 public:
  TinySet(size_t n, size_t c, size_t h, size_t w) : n_(n), c_(c), h_(h), w_(w) {}
  size_t size() const override { return n_; }
  Shape sample_shape() const override { return {c_, h_, w_}; }
  size_t num_classes() const override { return 3; }
  void get(size_t index, float* out, int32_t* label) const override {
    for (size_t j = 0; j < c_ * h_ * w_; ++j) out[j] = static_cast<float>((index * 37 + j * 11) % 256) / 255.0f;
    *label = static_cast<int32_t>(index % 3);
  }
  std::string describe() const override { return "tiny"; }
  std::vector<std::string> class_names() const override { return {"a", "b", "c"}; }

 private:
  size_t n_, c_, h_, w_;
};

std::vector<uint8_t> idx(const std::vector<uint32_t>& dims, size_t payload) {
  std::vector<uint8_t> out{0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(d >> shift));
  }
  for (size_t i = 0; i < payload; ++i) out.push_back(static_cast<uint8_t>(i * 7));
  return out;
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& bytes) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::vector<uint8_t> out(deflateBound(&zs, bytes.size()) + 32);
  zs.next_in = const_cast<uint8_t*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

Image image(size_t w, size_t h, size_t c) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = c;
  for (size_t j = 0; j < w * h * c; ++j) im.pixels.push_back(static_cast<uint8_t>(j * 13));
  return im;
}

CheckpointState checkpoint(const std::string& optimizer) {
  CheckpointState s;
  s.run_name = "seed";
  s.config_text = "name: seed\nseed: 1\n";
  s.seed = 1;
  s.epoch = 1;
  s.global_step = 4;
  s.steps_per_epoch = 4;
  s.global_batch = 2;
  s.dataset_size = 8;
  s.world_size = 1;
  s.parameters = {{"0.dense.weight", {2, 3}, {1, 2, 3, 4, 5, 6}}, {"0.dense.bias", {2}, {0.5f, -0.5f}}};
  s.buffers = {{"1.batch_norm.running_mean", {2}, {0, 1}}};
  s.optimizer_name = optimizer;
  s.optimizer_steps = 4;
  if (optimizer == "sgd") s.optimizer_state = {{"momentum", s.parameters}};
  s.metrics_json = "{\"epoch\": 1}";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUTPUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* t : {"idx", "image", "hdf5_dataset", "checkpoint"}) fs::create_directories(out / t);

  write_file_bytes((out / "idx/images-3x4x5").string(), idx({3, 4, 5}, 60));
  write_file_bytes((out / "idx/labels-3").string(), idx({3}, 3));
  write_file_bytes((out / "idx/images-3x4x5.gz").string(), gzip(idx({3, 4, 5}, 60)));
  write_file_bytes((out / "idx/labels-3.gz").string(), gzip(idx({3}, 3)));

  write_file_bytes((out / "image/grey-5x4.png").string(), encode_png(image(5, 4, 1)));
  write_file_bytes((out / "image/rgb-6x3.png").string(), encode_png(image(6, 3, 3)));
  write_file_bytes((out / "image/grey-8x8.jpg").string(), encode_jpeg(image(8, 8, 1), 90));
  write_file_bytes((out / "image/rgb-9x7.jpg").string(), encode_jpeg(image(9, 7, 3), 75));

  Hdf5WriteOptions options;
  options.source = "seed";
  write_hdf5_splits((out / "hdf5_dataset/grey-4x3x3.h5").string(), TinySet(4, 1, 3, 3), TinySet(2, 1, 3, 3), options);
  options.chunk_samples = 2;
  write_hdf5_splits((out / "hdf5_dataset/rgb-5x2x2-chunk2.h5").string(), TinySet(5, 3, 2, 2), TinySet(1, 3, 2, 2),
                    options);

  write_checkpoint((out / "checkpoint/ckpt-sgd.h5").string(), checkpoint("sgd"));
  write_checkpoint((out / "checkpoint/ckpt-adamw-nostate.h5").string(), checkpoint("adamw"));
  return 0;
}
