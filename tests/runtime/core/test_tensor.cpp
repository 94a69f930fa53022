#include <gtest/gtest.h>

#include "runtime/core/errors.h"
#include "runtime/core/tensor.h"

namespace dptrain {

TEST(Tensor, AllocatesZeroedAlignedMemory) {
  Tensor t({2, 3, 4});
  EXPECT_EQ(t.num_elements(), 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (size_t i = 0; i < t.num_elements(); ++i) EXPECT_EQ(t.data()[i], 0.0f);
}

TEST(Tensor, ViewsShareMemory) {
  Tensor t({4, 2});
  Tensor r = t.reshaped({8});
  r.data()[5] = 3.0f;
  EXPECT_EQ(t.data()[5], 3.0f);
  Tensor lead = t.leading(2);
  EXPECT_EQ(lead.shape(), (Shape{2, 2}));
  EXPECT_EQ(lead.data(), t.data());
}

TEST(Tensor, RejectsBadReshapeAndSlice) {
  Tensor t({4, 2});
  EXPECT_THROW(t.reshaped({3, 3}), ShapeError);
  EXPECT_THROW(t.leading(5), ShapeError);
  EXPECT_THROW(t.dim(2), ShapeError);
}

}  // namespace dptrain
