// See conv_geometry.h.
#include "runtime/kernels/conv_geometry.h"

#include <string_view>

#include "microkernel/base/error.h"
#include "runtime/core/shape.h"

namespace loom::kernels {

bool ConvGeometry::is_pointwise() const {
  for (int k = 0; k < 3; ++k) {
    if (kernel[k] != 1 || stride[k] != 1 || pad[k] != 0) return false;
  }
  return true;
}

std::array<std::int64_t, 3> spatial_values(const char* op, const char* attr, const ReduceDims& values, int n,
                                           std::int64_t fallback) {
  std::array<std::int64_t, 3> out{fallback, fallback, fallback};
  if (!values) return out;
  const auto& v = *values;
  LOOM_CHECK(v.size() == 1 || static_cast<int>(v.size()) == n, op, ": ", attr, " needs one value or ", n,
             " (one per spatial dim), got ", v.size());
  // Windows are sized by products and sums of these (dilation x kernel,
  // input + 2 x padding): values up to 2^31 keep that arithmetic inside 64
  // bits, where 2^62 wrapped to a negative output size. Sizes (output_size,
  // size, input_size) are dims of real arrays, bounded by their bytes.
  constexpr std::int64_t kLimit = std::int64_t{1} << 31;
  const std::string_view name(attr);
  const bool is_size = name.size() >= 4 && name.substr(name.size() - 4) == "size";
  for (std::size_t k = 0; !is_size && k < v.size(); ++k) {
    LOOM_CHECK(v[k] > -kLimit && v[k] < kLimit, op, ": ", attr, " ", v[k], " is out of range (at most 2^31 - 1 "
               "in magnitude)");
  }
  for (int d = 0; d < n; ++d) out[3 - n + d] = v.size() == 1 ? v[0] : v[static_cast<std::size_t>(d)];
  for (int k = 0; k < 3; ++k) out[k] = k < 3 - n ? fallback : out[k];
  return out;
}

namespace {

// Ranks, attribute lists and their ranges, common to both directions.
ConvGeometry common(const char* op, const Shape& x, const Shape& w, const ReduceDims& stride,
                    const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups) {
  LOOM_CHECK(x.size() >= 3 && x.size() <= 5, op, ": x must be (batch, channels, *spatial) with 1 to 3 spatial "
             "dims, got shape ", shape_str(x));
  LOOM_CHECK(w.size() == x.size(), op, ": weight must have x's rank ", x.size(), " (channels, channels, *kernel), "
             "got weight ", shape_str(w), " for x ", shape_str(x));
  LOOM_CHECK(groups >= 1, op, ": groups must be >= 1, got ", groups);
  ConvGeometry g;
  g.spatial_dims = static_cast<int>(x.size()) - 2;
  g.batch = x[0];
  g.groups = groups;
  const int n = g.spatial_dims;
  g.stride = spatial_values(op, "stride", stride, n, 1);
  g.pad = spatial_values(op, "padding", padding, n, 0);
  g.dilation = spatial_values(op, "dilation", dilation, n, 1);
  for (int k = 3 - n; k < 3; ++k) {
    LOOM_CHECK(g.stride[k] >= 1 && g.dilation[k] >= 1 && g.pad[k] >= 0, op, ": stride and dilation must be >= 1 "
               "and padding >= 0, got stride ", g.stride[k], ", dilation ", g.dilation[k], ", padding ", g.pad[k]);
    g.kernel[k] = w[2 + k - (3 - n)];
    LOOM_CHECK(g.kernel[k] >= 1, op, ": the kernel must be at least 1 in every spatial dim, got weight ",
               shape_str(w));
  }
  return g;
}

}  // namespace

ConvGeometry conv_geometry(const char* op, const Shape& x, const Shape& w, const ReduceDims& stride,
                           const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups) {
  ConvGeometry g = common(op, x, w, stride, padding, dilation, groups);
  g.image_channels = x[1];
  g.col_channels = w[0];
  LOOM_CHECK(g.col_channels % groups == 0 && g.image_channels % groups == 0, op, ": in_channels (", x[1],
             ") and out_channels (", w[0], ") must divide by groups (", groups, "); x ", shape_str(x), ", weight ",
             shape_str(w));
  LOOM_CHECK(w[1] * groups == x[1], op, ": x ", shape_str(x), " has ", x[1], " channels, but weight ",
             shape_str(w), " with groups=", groups, " expects ", w[1] * groups);
  const int n = g.spatial_dims;
  for (int k = 3 - n; k < 3; ++k) {
    g.image[k] = x[2 + k - (3 - n)];
    const std::int64_t span = g.dilation[k] * (g.kernel[k] - 1) + 1, padded = g.image[k] + 2 * g.pad[k];
    LOOM_CHECK(span <= padded, op, ": the kernel (", g.kernel[k], ", dilation ", g.dilation[k], ", spanning ", span,
               ") is larger than the padded input (", g.image[k], " + 2 * ", g.pad[k], " = ", padded,
               ") in spatial dim ", k - (3 - n), "; x ", shape_str(x), ", weight ", shape_str(w));
    g.cols[k] = (padded - span) / g.stride[k] + 1;
  }
  return g;
}

ConvGeometry deconv_geometry(const char* op, const Shape& x, const Shape& w, const ReduceDims& stride,
                             const ReduceDims& padding, const ReduceDims& output_padding,
                             const ReduceDims& dilation, std::int64_t groups) {
  ConvGeometry g = common(op, x, w, stride, padding, dilation, groups);
  g.col_channels = x[1];
  LOOM_CHECK(w[0] == x[1], op, ": x ", shape_str(x), " has ", x[1], " channels, but weight ", shape_str(w),
             " is for ", w[0], " (weight is (in_channels, out_channels / groups, *kernel))");
  LOOM_CHECK(w[0] % groups == 0, op, ": in_channels (", w[0], ") must divide by groups (", groups, ")");
  g.image_channels = w[1] * groups;
  const int n = g.spatial_dims;
  const auto extra = spatial_values(op, "output_padding", output_padding, n, 0);
  for (int k = 3 - n; k < 3; ++k) {
    LOOM_CHECK(extra[k] >= 0 && extra[k] < g.stride[k], op, ": output_padding must be in [0, stride), got ",
               extra[k], " with stride ", g.stride[k]);
    g.cols[k] = x[2 + k - (3 - n)];
    g.image[k] = (g.cols[k] - 1) * g.stride[k] - 2 * g.pad[k] + g.dilation[k] * (g.kernel[k] - 1) + extra[k] + 1;
    LOOM_CHECK(g.cols[k] >= 1 && g.image[k] >= 1, op, ": x ", shape_str(x), " with weight ", shape_str(w),
               ", stride ", g.stride[k], " and padding ", g.pad[k], " gives an output size of ", g.image[k],
               " in spatial dim ", k - (3 - n), " (must be >= 1)");
  }
  return g;
}

namespace {
Shape with_spatial(std::int64_t a, std::int64_t b, const std::array<std::int64_t, 3>& sizes, int n) {
  Shape s{a, b};
  for (int k = 3 - n; k < 3; ++k) s.push_back(sizes[k]);
  return s;
}
}  // namespace

Shape conv_cols_shape(const ConvGeometry& g) { return with_spatial(g.batch, g.col_channels, g.cols, g.spatial_dims); }

Shape conv_image_shape(const ConvGeometry& g) {
  return with_spatial(g.batch, g.image_channels, g.image, g.spatial_dims);
}

Shape conv_weight_shape(const ConvGeometry& g) {
  return with_spatial(g.col_channels, g.image_channels / g.groups, g.kernel, g.spatial_dims);
}

}  // namespace loom::kernels
