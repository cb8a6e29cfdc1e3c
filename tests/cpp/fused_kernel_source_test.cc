// The CUDA source of fused pointwise groups (runtime/graph/fused_kernel_source.h)
// built from the generated functor registry: what it names, and the specs it
// refuses. Runs in every build (the sanitizer builds have no CUDA): NVRTC
// compiles the same text in tests/python/test_graph_fusion_cuda.py.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/graph/fuse_pointwise_cuda.h"
#include "runtime/graph/fused_kernel_source.h"
#include "runtime/graph/fusion_source.h"
#include "runtime/graph/nvrtc_compile.h"
#include "tests/cpp/error_text.h"

namespace loom::graph {
namespace {

using loom::testing::error_text;

FusedKernelSpec mul_add_relu() {
  return FusedKernelSpec{{"mul", "add", "relu"}, {{0, 1}, {-1, 0}, {-2}}, {0, 1}, DType::kFloat32, {}, {}};
}

TEST(FusedKernelSource, FusableOpsRegisterTheirFunctorText) {
  const FusionSource* mul = find_fusion_source("mul");
  ASSERT_NE(mul, nullptr);
  EXPECT_EQ(mul->arity, 2);
  EXPECT_EQ(mul->functor, "MulFunctor");
  EXPECT_NE(mul->text.find("#line"), std::string_view::npos);
  EXPECT_EQ(find_fusion_source("softmax"), nullptr);  // an impl kernel
  EXPECT_EQ(find_fusion_source("sum"), nullptr);
  ASSERT_NE(find_fusion_source("clip"), nullptr);
  EXPECT_EQ(find_fusion_source("clip")->attr_types, "ff");
  EXPECT_NE(pointwise_math_source().find("namespace loom::pw"), std::string_view::npos);
}

TEST(FusedKernelSource, SignatureAndSourceNameEveryMember) {
  const FusedKernelSpec spec = mul_add_relu();
  EXPECT_EQ(spec.signature(), "f32:mul(x0,x1);add(m0,x0);relu(m1)|s01");
  const std::string src = fused_kernel_source(spec);
  for (const char* part : {"typedef float S;", "typedef float T;", "const T x1 = T(in1[0]);", "const T x0 = T(in0[i]);",
                           "::loom::kernels::MulFunctor{}(x0, x1);", "::loom::kernels::ReluFunctor{}(m1);",
                           "return m2;", "extern \"C\" __global__ void loom_fused("}) {
    EXPECT_NE(src.find(part), std::string::npos) << part;
  }
  // one definition per functor, however often the op appears
  FusedKernelSpec twice{{"relu", "relu"}, {{0}, {-1}}, {0}, DType::kFloat64, {}, {}};
  const std::string s2 = fused_kernel_source(twice);
  EXPECT_EQ(s2.find("struct ReluFunctor"), s2.rfind("struct ReluFunctor"));
  EXPECT_NE(s2.find("typedef double T;"), std::string::npos);
  // half arrays: stored as loom::f16 / bf16 through half.h, computed in float
  FusedKernelSpec half = mul_add_relu();
  half.dtype = DType::kFloat16;
  EXPECT_EQ(half.signature(), "f16:mul(x0,x1);add(m0,x0);relu(m1)|s01");
  const std::string s3 = fused_kernel_source(half);
  for (const char* part : {"#include \"runtime/core/half.h\"", "typedef ::loom::f16 S;", "typedef float T;",
                           "loom_fused_kernel::S(r[u])"}) {
    EXPECT_NE(s3.find(part), std::string::npos) << part;
  }
  half.dtype = DType::kBFloat16;
  EXPECT_NE(fused_kernel_source(half).find("typedef ::loom::bf16 S;"), std::string::npos);
  EXPECT_EQ(src.find("half.h"), std::string::npos);  // float32 needs no conversions
}

TEST(FusedKernelSource, NumericAttributesAreKernelArgumentsAndBoolsLiterals) {
  FusedKernelSpec spec{{"leaky_relu", "gelu"}, {{0}, {-1}}, {0}, DType::kFloat32, {{0.01}, {0.0}}, {}};
  EXPECT_EQ(spec.signature(), "f32:leaky_relu[a0](x0);gelu[false](m0)|s0");
  EXPECT_EQ(spec.attr_values(), std::vector<double>{0.01});
  const std::string src = fused_kernel_source(spec);
  EXPECT_NE(src.find("LeakyReluFunctor{attrs.v[0]}(x0)"), std::string::npos);
  EXPECT_NE(src.find("GeluFunctor{false}(m0)"), std::string::npos);
  EXPECT_NE(src.find("double v[1];"), std::string::npos);
}

TEST(FusedKernelSource, MalformedSpecsAreRefusedByName) {
  FusedKernelSpec no_refs{{"relu"}, {}, {0}, DType::kFloat32, {}, {}};
  EXPECT_NE(error_text([&] { fused_kernel_source(no_refs); }).find("1 ops with 0 argument lists"), std::string::npos);
  EXPECT_EQ(no_refs.signature(), "f32:relu()|s0");  // still names itself
  FusedKernelSpec unknown{{"softmax"}, {{0}}, {0}, DType::kFloat32, {}, {}};
  EXPECT_NE(error_text([&] { fused_kernel_source(unknown); }).find("'softmax' has no fusion source"),
            std::string::npos);
  FusedKernelSpec no_attrs{{"leaky_relu"}, {{0}}, {0}, DType::kFloat32, {}, {}};
  EXPECT_NE(error_text([&] { fused_kernel_source(no_attrs); }).find("has 1 attributes, given 0"), std::string::npos);
  FusedKernelSpec forward_ref{{"relu", "relu"}, {{-2}, {-1}}, {0}, DType::kFloat32, {}, {}};
  EXPECT_NE(error_text([&] { fused_kernel_source(forward_ref); }).find("reads m1, which is not an earlier member"),
            std::string::npos);
  FusedKernelSpec ints = mul_add_relu();
  ints.dtype = DType::kInt32;
  EXPECT_NE(error_text([&] { fused_kernel_source(ints); }).find("expected float32, float64, float16 or bfloat16"),
            std::string::npos);
}

TEST(FusedKernelSource, BuildsWithoutNvrtcSayWhatIsMissing) {
  if (nvrtc_available()) GTEST_SKIP() << "this build has NVRTC (the Python tests compile with it)";
  EXPECT_FALSE(fused_cuda_available());
  EXPECT_NE(error_text([] { nvrtc_compile("", 90); }).find("no NVRTC"), std::string::npos);
}

}  // namespace
}  // namespace loom::graph
