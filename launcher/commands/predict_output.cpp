#include "launcher/commands/predict_output.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "runtime/report/metrics.h"

namespace dptrain::launcher {

namespace {

// A probability for the table: four decimals.
std::string table_probability(float p) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", static_cast<double>(p));
  return text;
}

// `text` padded with spaces to `width` (left-aligned), and the two spaces between columns.
std::string column(const std::string& text, size_t width) {
  return text + std::string(width > text.size() ? width - text.size() : 0, ' ') + "  ";
}

// A table line without the spaces after its last column.
std::string line(std::string text) {
  text.erase(text.find_last_not_of(' ') + 1);
  return text + "\n";
}

}  // namespace

std::vector<ClassScore> top_k(const float* probabilities, size_t classes, size_t k) {
  std::vector<size_t> order(classes);
  std::iota(order.begin(), order.end(), size_t{0});
  const size_t n = std::min(k, classes);
  // Most probable first; stable, so equal probabilities keep label order.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probabilities[a] > probabilities[b]; });
  std::vector<ClassScore> top(n);
  for (size_t i = 0; i < n; ++i) top[i] = {order[i], probabilities[order[i]]};
  return top;
}

PredictionFormatter::PredictionFormatter(PredictFormat format, size_t k, size_t classes,
                                         std::vector<std::string> class_names, size_t image_width)
    : format_(format), k_(std::min(k, classes)), names_(std::move(class_names)), image_width_(image_width) {
  label_width_ = std::string("top").size() + std::to_string(k_).size();
  for (size_t c = 0; c < classes; ++c) label_width_ = std::max(label_width_, label_of(c).size());
  image_width_ = std::max(image_width_, std::string("image").size());
}

std::string PredictionFormatter::name_of(size_t index) const { return index < names_.size() ? names_[index] : ""; }

std::string PredictionFormatter::label_of(size_t index) const {
  return index < names_.size() ? names_[index] : std::to_string(index);
}

std::string PredictionFormatter::header() const {
  std::string out;
  switch (format_) {
    case PredictFormat::Table:
      out = column("image", image_width_);
      for (size_t i = 1; i <= k_; ++i) {
        out += column("top" + std::to_string(i), label_width_) + column("p" + std::to_string(i), 6);
      }
      return line(out);
    case PredictFormat::Csv:
      out = "image";
      for (size_t i = 1; i <= k_; ++i) {
        const std::string n = std::to_string(i);
        out += ",class_" + n + ",name_" + n + ",probability_" + n;
      }
      return out + "\n";
    case PredictFormat::Jsonl:
      break;
  }
  return "";
}

std::string PredictionFormatter::row(const std::string& image, const std::vector<ClassScore>& top) const {
  std::string out;
  switch (format_) {
    case PredictFormat::Table:
      out = column(image, image_width_);
      for (const ClassScore& s : top)
        out += column(label_of(s.index), label_width_) + column(table_probability(s.probability), 6);
      return line(out);
    case PredictFormat::Csv:
      out = csv_field(image);
      for (const ClassScore& s : top) {
        out += "," + std::to_string(s.index) + "," + csv_field(name_of(s.index)) + "," + json_number(s.probability);
      }
      return out + "\n";
    case PredictFormat::Jsonl:
      out = "{\"image\": " + json_string(image) + ", \"top\": [";
      for (size_t i = 0; i < top.size(); ++i) {
        out += (i ? ", " : "") + std::string("{\"class\": ") + std::to_string(top[i].index);
        if (top[i].index < names_.size()) out += ", \"name\": " + json_string(names_[top[i].index]);
        out += ", \"probability\": " + json_number(top[i].probability) + "}";
      }
      return out + "]}\n";
  }
  return out;
}

std::string csv_field(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace dptrain::launcher
