// What `dptrain predict` prints: the top k classes in order, and the table, JSON lines and CSV forms,
// with class names where the checkpoint has them and indices where not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "launcher/commands/predict_output.h"
#include "tests/json_value.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using launcher::ClassScore;
using launcher::csv_field;
using launcher::PredictFormat;
using launcher::PredictionFormatter;
using launcher::top_k;

std::vector<size_t> indices(const std::vector<ClassScore>& top) {
  std::vector<size_t> out;
  for (const ClassScore& s : top) out.push_back(s.index);
  return out;
}

TEST(PredictOutput, TopKIsMostProbableFirstTiesInLabelOrder) {
  const float p[5] = {0.1f, 0.4f, 0.1f, 0.3f, 0.1f};
  EXPECT_EQ(indices(top_k(p, 5, 3)), (std::vector<size_t>{1, 3, 0}));
  EXPECT_EQ(indices(top_k(p, 5, 5)), (std::vector<size_t>{1, 3, 0, 2, 4}));
  EXPECT_EQ(indices(top_k(p, 5, 50)), (std::vector<size_t>{1, 3, 0, 2, 4}));  // at most every class
  EXPECT_EQ(indices(top_k(p, 5, 1)), (std::vector<size_t>{1}));
  EXPECT_FLOAT_EQ(top_k(p, 5, 1)[0].probability, 0.4f);
}

TEST(PredictOutput, TableAlignsColumnsAndShowsNamesOrIndices) {
  const PredictionFormatter named(PredictFormat::Table, 2, 3, {"cat", "dog", "horse"}, 9);
  EXPECT_EQ(named.header(), "image      top1   p1      top2   p2\n");
  EXPECT_EQ(named.row("a/b.png", {{2, 0.75f}, {0, 0.2f}}), "a/b.png    horse  0.7500  cat    0.2000\n");
  // Without names (an older checkpoint): indices; and a label beyond the names is shown by its index too.
  const PredictionFormatter plain(PredictFormat::Table, 1, 12, {}, 3);
  EXPECT_EQ(plain.header(), "image  top1  p1\n");
  EXPECT_EQ(plain.row("x.png", {{11, 0.99999f}}), "x.png  11    1.0000\n");
  const PredictionFormatter short_names(PredictFormat::Table, 1, 3, {"a", "b"}, 5);
  EXPECT_EQ(short_names.row("x.png", {{2, 0.5f}}), "x.png  2     0.5000\n");
}

TEST(PredictOutput, JsonLinesAreValidJsonWithNamesWhereKnown) {
  const PredictionFormatter formatter(PredictFormat::Jsonl, 2, 3, {"cat", "say \"hi\"\n"}, 0);
  EXPECT_EQ(formatter.header(), "");
  const std::string line = formatter.row("dir/\"odd\".png", {{1, 0.625f}, {2, 0.25f}});
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  const testing::JsonValue v = testing::JsonParser(line.substr(0, line.size() - 1)).parse_document();
  EXPECT_EQ(v["image"].string, "dir/\"odd\".png");
  ASSERT_EQ(v["top"].array.size(), 2u);
  EXPECT_EQ(v["top"].array[0]["class"].number, 1);
  EXPECT_EQ(v["top"].array[0]["name"].string, "say \"hi\"\n");
  EXPECT_EQ(v["top"].array[0]["probability"].number, 0.625);
  EXPECT_EQ(v["top"].array[1]["class"].number, 2);
  EXPECT_FALSE(v["top"].array[1].has("name"));  // class 2 has no name
}

TEST(PredictOutput, CsvHasOneRowPerImageAndQuotesWhereNeeded) {
  const PredictionFormatter formatter(PredictFormat::Csv, 2, 3, {"cat", "big, fat dog"}, 0);
  EXPECT_EQ(formatter.header(), "image,class_1,name_1,probability_1,class_2,name_2,probability_2\n");
  EXPECT_EQ(formatter.row("a,b.png", {{1, 0.5f}, {2, 0.125f}}), "\"a,b.png\",1,\"big, fat dog\",0.5,2,,0.125\n");
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
}

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain
