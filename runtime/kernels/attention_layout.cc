// See attention_layout.h.
#include "runtime/kernels/attention_layout.h"

#include <cmath>
#include <limits>

#include "loom/ops/add.h"
#include "microkernel/base/error.h"
#include "runtime/core/shape.h"

namespace loom::kernels {

AttentionLayout attention_layout(const NDArray& q, const NDArray& k, const NDArray& v, const NDArray& valid_length,
                                 double scale) {
  constexpr const char* kOp = "scaled_dot_product_attention";
  LOOM_CHECK(q.ndim() >= 2 && k.ndim() == q.ndim() && v.ndim() == q.ndim(), kOp, ": q, k and v must have one rank, "
             "at least 2 ((..., L, D)); got q ", q.describe(), ", k ", k.describe(), ", v ", v.describe());
  const int r = q.ndim();
  const Shape lead(q.shape().begin(), q.shape().end() - 2);
  LOOM_CHECK(Shape(k.shape().begin(), k.shape().end() - 2) == lead &&
                 Shape(v.shape().begin(), v.shape().end() - 2) == lead,
             kOp, ": q, k and v must have the same leading dims, got q ", q.describe(), ", k ", k.describe(), ", v ",
             v.describe());
  AttentionLayout a;
  a.batch = shape_numel(lead);
  a.lq = q.shape()[r - 2];
  a.d = q.shape()[r - 1];
  a.lk = k.shape()[r - 2];
  a.dv = v.shape()[r - 1];
  LOOM_CHECK(k.shape()[r - 1] == a.d, kOp, ": k's last dim must equal q's (", a.d, "), got k ", k.describe());
  LOOM_CHECK(v.shape()[r - 2] == a.lk, kOp, ": v must have k's length ", a.lk, ", got v ", v.describe());
  LOOM_CHECK(a.lk >= 1 || a.lq == 0 || a.batch == 0, kOp, ": no keys (k ", k.describe(), ")");
  if (valid_length.defined()) {
    LOOM_CHECK(valid_length.shape() == lead || (r >= 3 && valid_length.shape() == Shape{lead[0]}), kOp,
               ": valid_length must have q's leading dims ", shape_str(lead), " or the first of them, got ",
               valid_length.describe());
    a.per_length = valid_length.numel() == 0 ? 1 : a.batch / std::max<std::int64_t>(valid_length.numel(), 1);
  }
  // Any finite factor, negative too, as torch takes it; 0 stands for the default.
  LOOM_CHECK(std::isfinite(scale), kOp, ": scale must be finite (0: 1/sqrt(D)), got ", scale);
  a.scale = scale != 0 ? scale : 1.0 / std::sqrt(static_cast<double>(std::max<std::int64_t>(a.d, 1)));
  return a;
}

std::vector<std::int64_t> attention_key_limits(const AttentionLayout& a, const std::int64_t* lengths) {
  std::vector<std::int64_t> limits(static_cast<std::size_t>(a.batch), a.lk);
  if (lengths == nullptr) return limits;
  for (std::int64_t b = 0; b < a.batch; ++b) {
    const std::int64_t n = lengths[b / a.per_length];
    LOOM_CHECK(n >= 1, "scaled_dot_product_attention: valid_length must be >= 1 (a query must attend a key), got ",
               n);
    limits[static_cast<std::size_t>(b)] = std::min(n, a.lk);  // past Lk: every key, as MXNet's masked softmax
  }
  return limits;
}

std::vector<std::int64_t> attention_key_limits(const AttentionLayout& a, const NDArray& valid_length) {
  if (!valid_length.defined()) return attention_key_limits(a, nullptr);
  std::vector<std::int64_t> lengths(static_cast<std::size_t>(valid_length.numel()));
  valid_length.astype(DType::kInt64).copy_to_host(lengths.data());
  return attention_key_limits(a, lengths.data());
}

namespace {

// A host array of `shape` in float64 from fill(index) -> 0 or -inf, then in
// `dtype` on `device`.
template <typename Fill>
NDArray mask_array(const Shape& shape, DType dtype, Device device, Fill fill) {
  NDArray host = NDArray::empty(shape, DType::kFloat64);
  double* p = host.data<double>();
  const std::int64_t n = shape_numel(shape);
  for (std::int64_t i = 0; i < n; ++i) p[i] = fill(i);
  NDArray typed = host.astype(dtype);
  return device.is_cpu() ? typed : typed.to(device);
}

}  // namespace

NDArray add_attention_masks(const NDArray& scores, const AttentionLayout& a, const Shape& q_shape,
                            const NDArray& valid_length, bool causal) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const Shape lead(q_shape.begin(), q_shape.end() - 2);
  NDArray out = scores;
  if (causal) {  // one (Lq, Lk) triangle for every problem: key j > query i is masked
    Shape shape(lead.size(), 1);
    shape.push_back(a.lq);
    shape.push_back(a.lk);
    const std::int64_t lk = a.lk;
    out = op::add(out, mask_array(shape, scores.dtype(), scores.device(),
                                  [lk](std::int64_t i) { return i % lk > i / lk ? -kInf : 0.0; }));
  }
  if (valid_length.defined()) {  // per problem, keys at or past its length are masked
    const std::vector<std::int64_t> limits = attention_key_limits(a, valid_length);
    Shape shape = lead;
    shape.push_back(1);
    shape.push_back(a.lk);
    const std::int64_t lk = a.lk;
    out = op::add(out, mask_array(shape, scores.dtype(), scores.device(), [&](std::int64_t i) {
      return i % lk >= limits[static_cast<std::size_t>(i / lk)] ? -kInf : 0.0;
    }));
  }
  return out;
}

}  // namespace loom::kernels
