// See conv_dnnl.h. One primitive per (direction, geometry), created once
// (oneDNN JIT-compiles it) and cached; scratchpads and reordered copies
// come from loom's host allocator, which keeps blocks for reuse, so a
// training step allocates nothing new after the first.
#include "runtime/kernels/cpu/conv_dnnl.h"

#include <cstdlib>
#include <string>

#if LOOM_WITH_DNNL
#include <dnnl.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#endif

#include "microkernel/base/error.h"

namespace loom::kernels {

const std::string& conv_backend_override() {
  static const std::string choice = [] {
    const char* v = std::getenv("LOOM_CONV_BACKEND");
    return std::string(v == nullptr ? "" : v);
  }();
  return choice;
}

bool conv_dnnl_enabled(DType dtype) {
#if LOOM_WITH_DNNL
  return conv_backend_override() != "im2col" && dtype == DType::kFloat32;
#else
  (void)dtype;
  return false;
#endif
}

#if LOOM_WITH_DNNL
namespace {

// Where loom's im2col + GEMM measured faster than oneDNN (bench/bench_nn.py
// and the per-direction timings in docs/nn-ops.md): a 1x1 kernel (im2col is
// a strided gather, or nothing, and the GEMM is the whole work; oneDNN's
// reorders to and from its blocked layout cost more) and a convolution
// with at most 3 input channels, such as a network's first layer
// (oneDNN's backward-data was 6x slower on LeNet's 1-channel 5x5).
bool im2col_is_faster(const ConvGeometry& g) {
  return g.kernel_size() == 1 || (g.groups == 1 && g.image_channels <= 3);
}

using dnnl::memory;
using tag = dnnl::memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

enum class Direction { kForward, kBackwardData, kBackwardWeights };

// The dims oneDNN describes one convolution with.
struct Dims {
  memory::dims image, cols, weights, bias, strides, dilates, pad_l, pad_r;
  tag plain;         // ncw / nchw / ncdhw
  tag plain_weights; // (g)oiw / (g)oihw / (g)oidhw
};

Dims dims_of(const ConvGeometry& g) {
  Dims d;
  const int n = g.spatial_dims;
  d.image = {g.batch, g.image_channels};
  d.cols = {g.batch, g.col_channels};
  if (g.groups > 1) {
    d.weights = {g.groups, g.col_channels / g.groups, g.image_channels / g.groups};
  } else {
    d.weights = {g.col_channels, g.image_channels};
  }
  d.bias = {g.col_channels};
  for (int k = 3 - n; k < 3; ++k) {
    d.image.push_back(g.image[k]);
    d.cols.push_back(g.cols[k]);
    d.weights.push_back(g.kernel[k]);
    d.strides.push_back(g.stride[k]);
    d.dilates.push_back(g.dilation[k] - 1);  // oneDNN counts the gaps
    d.pad_l.push_back(g.pad[k]);
    // the right padding that makes oneDNN's size formula give `cols` exactly
    d.pad_r.push_back((g.cols[k] - 1) * g.stride[k] + g.dilation[k] * (g.kernel[k] - 1) + 1 - g.image[k] - g.pad[k]);
  }
  static const tag plains[] = {tag::ncw, tag::nchw, tag::ncdhw};
  static const tag weights[] = {tag::oiw, tag::oihw, tag::oidhw};
  static const tag grouped[] = {tag::goiw, tag::goihw, tag::goidhw};
  d.plain = plains[n - 1];
  d.plain_weights = g.groups > 1 ? grouped[n - 1] : weights[n - 1];
  return d;
}

std::string key_of(Direction dir, const ConvGeometry& g, bool bias) {
  std::string k = std::to_string(static_cast<int>(dir)) + (bias ? "b" : "-") + std::to_string(g.spatial_dims);
  for (std::int64_t v : {g.batch, g.image_channels, g.col_channels, g.groups}) k += "," + std::to_string(v);
  for (const auto* a : {&g.image, &g.cols, &g.kernel, &g.stride, &g.pad, &g.dilation}) {
    for (std::int64_t v : *a) k += "," + std::to_string(v);
  }
  return k;
}

memory::desc any_desc(const memory::dims& dims) { return memory::desc(dims, memory::data_type::f32, tag::any); }
memory::desc plain_desc(const memory::dims& dims, tag t) { return memory::desc(dims, memory::data_type::f32, t); }

// One array a primitive reads or writes: its oneDNN argument, the layout
// the primitive chose and loom's plain row-major layout.
struct Role {
  int arg;
  memory::desc chosen, plain;
};

// A created primitive: its two inputs and its output, in the direction's
// order (forward: image, weights -> cols; backward-data: cols, weights ->
// image; backward-weights: image, cols -> weights).
struct Cached {
  dnnl::primitive primitive;
  Role in[2], out;
  memory::desc scratchpad;
  std::string implementation;  // oneDNN's impl_info_str()
};

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // from loom's allocator, per call: thread-safe
  return attr;
}

// LOOM_CONV_WINOGRAD (read once): 0 never, 1 wherever oneDNN has it; unset: winograd_is_faster.
int winograd_override() {
  static const int choice = [] {
    const char* v = std::getenv("LOOM_CONV_WINOGRAD");
    return v == nullptr || *v == '\0' ? -1 : std::atoi(v) != 0 ? 1 : 0;
  }();
  return choice;
}

// oneDNN's Winograd F(4x4, 3x3) (AVX-512; up to 4x fewer multiplies)
// measured faster than its direct kernels on 3x3 stride-1 convolutions
// with at least 32 channels each side and 4096 output pixels per batch:
// 1.5-2.7x per direction on ResNet-18's 3x3 layers at batch 32, back to
// back in one process (docs/nn-ops.md). Below that its transforms cost more than they save
// (batch 1 at 14x14: 1.7x slower; 16 channels: 1.3x slower). Its results
// differ from direct ones by a few float32 roundings more (max error 3e-6 of
// the largest output against 3e-7), as with cuDNN's Winograd algorithms.
bool winograd_is_faster(const ConvGeometry& g) {
  return g.spatial_dims == 2 && g.groups == 1 && g.kernel[1] == 3 && g.kernel[2] == 3 && g.stride[1] == 1 &&
         g.stride[2] == 1 && g.dilation[1] == 1 && g.dilation[2] == 1 && g.image_channels >= 32 &&
         g.col_channels >= 32 && g.batch * g.cols[1] * g.cols[2] >= 4096;
}

dnnl::algorithm algorithm_for(const ConvGeometry& g) {
  const int o = winograd_override();
  return (o < 0 ? winograd_is_faster(g) : o == 1) ? dnnl::algorithm::convolution_winograd
                                                  : dnnl::algorithm::convolution_direct;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Dims& d, bool bias, dnnl::algorithm algo) {
  using cf = dnnl::convolution_forward;
  const auto desc = bias ? cf::desc(dnnl::prop_kind::forward_training, algo,
                                    any_desc(d.image), any_desc(d.weights), plain_desc(d.bias, tag::x),
                                    any_desc(d.cols), d.strides, d.dilates, d.pad_l, d.pad_r)
                         : cf::desc(dnnl::prop_kind::forward_training, algo,
                                    any_desc(d.image), any_desc(d.weights), any_desc(d.cols), d.strides, d.dilates,
                                    d.pad_l, d.pad_r);
  return cf::primitive_desc(desc, user_scratchpad(), cpu_engine());
}

Cached create(Direction dir, const ConvGeometry& g, bool bias, dnnl::algorithm algo) {
  const Dims d = dims_of(g);
  const memory::desc image = plain_desc(d.image, d.plain), cols = plain_desc(d.cols, d.plain);
  const memory::desc weights = plain_desc(d.weights, d.plain_weights);
  const auto fwd = forward_pd(d, bias && dir == Direction::kForward, algo);
  if (dir == Direction::kForward) {
    return {dnnl::convolution_forward(fwd),
            {{DNNL_ARG_SRC, fwd.src_desc(), image}, {DNNL_ARG_WEIGHTS, fwd.weights_desc(), weights}},
            {DNNL_ARG_DST, fwd.dst_desc(), cols}, fwd.scratchpad_desc(), fwd.impl_info_str()};
  }
  if (dir == Direction::kBackwardData) {
    using bd = dnnl::convolution_backward_data;
    const bd::desc desc(algo, any_desc(d.image), any_desc(d.weights), any_desc(d.cols),
                        d.strides, d.dilates, d.pad_l, d.pad_r);
    const bd::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), fwd);
    return {bd(pd), {{DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), cols}, {DNNL_ARG_WEIGHTS, pd.weights_desc(), weights}},
            {DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), image}, pd.scratchpad_desc(), pd.impl_info_str()};
  }
  using bw = dnnl::convolution_backward_weights;
  const bw::desc desc(algo, any_desc(d.image), any_desc(d.weights), any_desc(d.cols),
                      d.strides, d.dilates, d.pad_l, d.pad_r);
  const bw::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), fwd);
  return {bw(pd), {{DNNL_ARG_SRC, pd.src_desc(), image}, {DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), cols}},
          {DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), weights}, pd.scratchpad_desc(), pd.impl_info_str()};
}

const Cached& cached(Direction dir, const ConvGeometry& g, bool bias) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Cached>> cache;
  const std::string key = key_of(dir, g, bias);
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) {
    // Winograd where chosen and oneDNN implements it for this direction, else direct.
    const dnnl::algorithm algo = algorithm_for(g);
    std::unique_ptr<Cached> made;
    if (algo == dnnl::algorithm::convolution_winograd) {
      try {
        made = std::make_unique<Cached>(create(dir, g, bias, algo));
      } catch (const dnnl::error&) {
      }
    }
    if (made == nullptr) made = std::make_unique<Cached>(create(dir, g, bias, dnnl::algorithm::convolution_direct));
    it = cache.emplace(key, std::move(made)).first;
  }
  return *it->second;
}

// Host memory for a oneDNN layout, from loom's allocator (kept alive by `keep`).
memory scratch(const memory::desc& desc, NDArray& keep) {
  const std::int64_t floats = static_cast<std::int64_t>((desc.get_size() + 3) / 4);
  keep = NDArray::empty({floats > 0 ? floats : 1}, DType::kFloat32);
  return memory(desc, cpu_engine(), keep.data<float>());
}

// A loom array as oneDNN memory in the primitive's layout: the array itself
// when the layouts agree, else a reordered copy in `keep`.
memory input(const Role& role, const NDArray& a, NDArray& keep, dnnl::stream& s) {
  memory user(role.plain, cpu_engine(), const_cast<float*>(a.data<const float>()));
  if (role.chosen == role.plain) return user;
  memory m = scratch(role.chosen, keep);
  dnnl::reorder(user, m).execute(s, user, m);
  return m;
}

// Runs the primitive on loom arrays a, b (and bias), writing `out`: inputs
// reordered into the primitive's layouts, the output back out of its one.
void execute(const Cached& c, const NDArray& a_in, const NDArray& b_in, const NDArray& bias_in, NDArray& out) {
  const NDArray a = a_in.contiguous(), b = b_in.contiguous();
  const NDArray bias = bias_in.defined() ? bias_in.contiguous() : NDArray();
  dnnl::stream s(cpu_engine());
  NDArray keep_a, keep_b, keep_out, keep_pad;
  std::unordered_map<int, memory> args{{c.in[0].arg, input(c.in[0], a, keep_a, s)},
                                       {c.in[1].arg, input(c.in[1], b, keep_b, s)}};
  if (bias.defined()) {
    const memory::desc desc({bias.shape()[0]}, memory::data_type::f32, tag::x);
    args[DNNL_ARG_BIAS] = memory(desc, cpu_engine(), const_cast<float*>(bias.data<const float>()));
  }
  memory user_out(c.out.plain, cpu_engine(), out.data<float>());
  const bool reorder_out = c.out.chosen != c.out.plain;
  memory result = reorder_out ? scratch(c.out.chosen, keep_out) : user_out;
  args[c.out.arg] = result;
  args[DNNL_ARG_SCRATCHPAD] = scratch(c.scratchpad, keep_pad);
  c.primitive.execute(s, args);
  if (reorder_out) dnnl::reorder(result, user_out).execute(s, result, user_out);
  s.wait();
}

// The cached primitive, or nullptr when oneDNN has none for this geometry
// (the caller falls back to im2col + GEMM).
const Cached* primitive_for(Direction dir, const ConvGeometry& g, bool bias) {
  if (im2col_is_faster(g)) return nullptr;
  try {
    return &cached(dir, g, bias);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

// oneDNN's convolution in direction `dir`, or false when it does not take it.
bool run_direction(Direction dir, const ConvGeometry& g, NDArray& out, const NDArray& a, const NDArray& b,
                   const NDArray& bias) {
  if (!conv_dnnl_enabled(out.dtype())) return false;
  const Cached* c = primitive_for(dir, g, bias.defined());
  if (c == nullptr) return false;
  execute(*c, a, b, bias, out);
  return true;
}

}  // namespace

std::string dnnl_conv_implementation(const ConvGeometry& g, const std::string& direction) {
  const Direction dir = direction == "forward" ? Direction::kForward
                        : direction == "data"  ? Direction::kBackwardData
                                               : Direction::kBackwardWeights;
  LOOM_CHECK(direction == "forward" || direction == "data" || direction == "weight",
             "dnnl_conv_implementation: direction '", direction, "' (expected forward, data or weight)");
  if (!conv_dnnl_enabled(DType::kFloat32)) return "";
  const Cached* c = primitive_for(dir, g, false);
  return c == nullptr ? "" : c->implementation;
}

bool dnnl_convolution(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w, const NDArray& bias) {
  return run_direction(Direction::kForward, g, out, x, w, bias);
}

bool dnnl_conv_transposed(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w) {
  return run_direction(Direction::kBackwardData, g, out, x, w, NDArray());
}

bool dnnl_conv_weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy) {
  return run_direction(Direction::kBackwardWeights, g, out, x, dy, NDArray());
}

#else  // built without oneDNN: the im2col + GEMM kernels take every call

bool dnnl_convolution(const ConvGeometry&, NDArray&, const NDArray&, const NDArray&, const NDArray&) { return false; }
bool dnnl_conv_transposed(const ConvGeometry&, NDArray&, const NDArray&, const NDArray&) { return false; }
bool dnnl_conv_weight_grad(const ConvGeometry&, NDArray&, const NDArray&, const NDArray&) { return false; }
std::string dnnl_conv_implementation(const ConvGeometry&, const std::string&) { return ""; }

#endif

}  // namespace loom::kernels
