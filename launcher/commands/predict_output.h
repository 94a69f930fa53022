// What `dptrain predict` prints: each image's most probable classes, as an aligned table, JSON lines
// or CSV, one image a line, so that the output can stream batch by batch.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace dptrain::launcher {

// One class of an image's prediction.
struct ClassScore {
  size_t index = 0;       // the class's label
  float probability = 0;  // in [0, 1]
};

// The `k` most probable of `classes` probabilities (all of them when k >= classes), most probable
// first; equal probabilities in label order.
std::vector<ClassScore> top_k(const float* probabilities, size_t classes, size_t k);

// The output formats of `dptrain predict --format`.
enum class PredictFormat { Table, Jsonl, Csv };

// Formats predictions. Class names come from the checkpoint; a class without one (an older checkpoint,
// a data set without names, or a label beyond the names) is shown by its index.
class PredictionFormatter {
 public:
  // `k`: classes per image (the header's columns), of the model's `classes`; `image_width`: the longest
  // image path, to align the table's first column (unused by the other formats).
  PredictionFormatter(PredictFormat format, size_t k, size_t classes, std::vector<std::string> class_names,
                      size_t image_width);

  // The lines before the first image's ("" for JSON lines), each ending in '\n'.
  std::string header() const;
  // One image's line, ending in '\n'.
  std::string row(const std::string& image, const std::vector<ClassScore>& top) const;

 private:
  // The class's name, or "" when it has none.
  std::string name_of(size_t index) const;
  // The class as the table shows it: its name, else its index.
  std::string label_of(size_t index) const;

  PredictFormat format_;
  size_t k_;
  std::vector<std::string> names_;
  size_t image_width_;
  size_t label_width_;  // the table's class columns: the longest name or index shown
};

// `field` as one CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a
// line break; as it is otherwise.
std::string csv_field(const std::string& field);

}  // namespace dptrain::launcher
