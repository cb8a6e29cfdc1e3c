// tile, repeat and pad (opdefs/shape/expand.yaml): shape rules and kernels.
// Each kernel describes the output as a view in which the input is a
// broadcast (tile: (r0, s0, r1, s1, ...) against (1, s0, 1, s1, ...);
// repeat: (..., s, r, ...) against (..., s, 1, ...); pad: the interior
// slab) and fills it with the generated copy op, whose CPU and CUDA loops
// handle any strides, so one function serves both devices.
#include <string>

#include "generated/kernels/pad.h"
#include "generated/kernels/repeat.h"
#include "generated/kernels/tile.h"
#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

// tile's operands at one rank (NumPy's rule: the shorter of x.shape and
// reps is padded with leading 1s).
struct TilePlan {
  Shape in;                        // x's shape with leading 1s
  std::vector<std::int64_t> reps;  // reps with leading 1s
};

TilePlan plan_tile(const NDArray& x, const ReduceDims& reps) {
  LOOM_CHECK(reps.has_value(), "tile: reps must be given (an int or a list of ints)");
  TilePlan p{x.shape(), *reps};
  for (std::int64_t r : p.reps) {
    LOOM_CHECK(r >= 0, "tile: reps ", dims_str(*reps), " has a negative count");
  }
  while (p.in.size() < p.reps.size()) p.in.insert(p.in.begin(), 1);
  while (p.reps.size() < p.in.size()) p.reps.insert(p.reps.begin(), 1);
  return p;
}

}  // namespace

Shape infer_tile(const NDArray& x, ::loom::ReduceDims reps) {
  const TilePlan p = plan_tile(x, reps);
  Shape out(p.in.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = p.in[i] * p.reps[i];
  return out;
}

void tile_into(NDArray& out, const NDArray& x, ::loom::ReduceDims reps) {
  if (out.numel() == 0) return;
  const TilePlan p = plan_tile(x, reps);
  // x with the leading size-1 dims plan_tile added (any stride fits a size-1 dim).
  Strides padded(p.in.size() - x.strides().size(), 0);
  padded.insert(padded.end(), x.strides().begin(), x.strides().end());
  const NDArray src = x.as_strided(p.in, padded, x.offset());
  Shape out_shape;
  Strides out_strides, src_strides;
  for (std::size_t i = 0; i < p.in.size(); ++i) {
    out_shape.insert(out_shape.end(), {p.reps[i], p.in[i]});
    out_strides.insert(out_strides.end(), {p.in[i] * out.strides()[i], out.strides()[i]});
    src_strides.insert(src_strides.end(), {0, src.strides()[i]});  // stride 0: every copy reads x
  }
  NDArray target = out.as_strided(out_shape, out_strides, out.offset());
  op::copy_out(target, src.as_strided(out_shape, src_strides, src.offset()));
}

Shape infer_repeat(const NDArray& x, std::int64_t repeats, std::int64_t dim) {
  const std::int64_t d = wrap_axis("repeat", dim, x.shape());
  LOOM_CHECK(repeats >= 0, "repeat: repeats must be >= 0, got ", repeats);
  Shape out = x.shape();
  out[d] *= repeats;
  return out;
}

void repeat_into(NDArray& out, const NDArray& x, std::int64_t repeats, std::int64_t dim) {
  if (out.numel() == 0) return;
  const std::int64_t d = wrap_axis("repeat", dim, x.shape());
  // out as (..., s, r, ...): element j of the run of x's element i along d.
  Shape out_shape = x.shape();
  Strides out_strides = out.strides(), src_strides = x.strides();
  out_shape.insert(out_shape.begin() + d + 1, repeats);
  out_strides[d] = out.strides()[d] * repeats;
  out_strides.insert(out_strides.begin() + d + 1, out.strides()[d]);
  src_strides.insert(src_strides.begin() + d + 1, 0);  // stride 0: each run reads one element
  NDArray target = out.as_strided(out_shape, out_strides, out.offset());
  op::copy_out(target, x.as_strided(out_shape, src_strides, x.offset()));
}

Shape infer_pad(const NDArray& x, ::loom::ReduceDims pad_width, double) {
  LOOM_CHECK(pad_width.has_value() && static_cast<std::int64_t>(pad_width->size()) == 2 * x.ndim(),
             "pad: pad_width must hold (before, after) for each of the ", x.ndim(), " dims of an array of shape ",
             shape_str(x.shape()), " (", 2 * x.ndim(), " numbers), got ",
             pad_width ? dims_str(*pad_width) : std::string("None"));
  Shape out = x.shape();
  for (std::int64_t d = 0; d < x.ndim(); ++d) {
    const std::int64_t before = (*pad_width)[2 * d], after = (*pad_width)[2 * d + 1];
    LOOM_CHECK(before >= 0 && after >= 0, "pad: pad_width ", dims_str(*pad_width), " has a negative width");
    out[d] += before + after;
  }
  return out;
}

void pad_into(NDArray& out, const NDArray& x, ::loom::ReduceDims pad_width, double value) {
  if (out.numel() == 0) return;
  // The border: the constant broadcast over the whole output first.
  const NDArray constant = autograd::full(Shape{}, value, out.dtype(), out.device());
  op::copy_out(out, constant.as_strided(out.shape(), Strides(out.shape().size(), 0), constant.offset()));
  std::int64_t offset = out.offset();
  for (std::int64_t d = 0; d < x.ndim(); ++d) offset += (*pad_width)[2 * d] * out.strides()[d];
  NDArray interior = out.as_strided(x.shape(), out.strides(), offset);
  if (x.numel() > 0) op::copy_out(interior, x);
}

}  // namespace loom::kernels
