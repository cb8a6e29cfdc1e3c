// Convolution on the GPU through cuDNN (opdefs/nn/convolution.yaml; depthwise
// 3x3/5x5/7x7 layers go to the direct kernels of depthwise_conv_cuda.cu): the
// forward convolution, the transposed convolution (cuDNN's backward-data)
// and the weight gradient (backward-filter), each with the algorithm cuDNN
// measures fastest for the exact shapes (cudnnFind*, once per shape,
// cached) within a workspace limit: LOOM_CUDNN_WORKSPACE_MB, default 1024;
// LOOM_CUDNN_DETERMINISTIC=1 keeps to deterministic algorithms.
// float32 convolutions use FMA math unless LOOM_ALLOW_TF32=1 lets cuDNN use
// TF32 tensor cores (PyTorch's default for cuDNN convolutions), so results
// match the CPU kernels to float32 rounding by default.
//
// Geometry comes from runtime/kernels/conv_geometry.h, so the GPU accepts
// and rejects exactly what the CPU does. cuDNN wants at least 2 spatial
// dims: a 1-D convolution runs as 2-D with a height of 1.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "generated/kernels/convolution.h"
#include "generated/kernels/convolution_weight_grad.h"
#include "generated/kernels/deconvolution.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/conv_geometry.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/cpu/conv_depthwise.h"

#if LOOM_WITH_CUDNN
#include "runtime/kernels/cuda/cudnn_api.h"

namespace loom::kernels {
namespace {

// cuDNN's functions (cudnn_api.h). Every path calls handle_for(op) first,
// which loads them or raises an error naming the op.
const CudnnApi& dnn() { return cudnn("convolution"); }

void check(cudnnStatus_t status, const char* op, const char* what) {
  LOOM_CHECK_KIND(status == CUDNN_STATUS_SUCCESS, ErrorKind::kRuntime, op, ": ", what, " failed: ",
                  dnn().GetErrorString(status));
}

// One handle per thread and device (cuDNN handles are not thread-safe).
cudnnHandle_t handle_for(const char* op) {
  int device = 0;
  cudaGetDevice(&device);
  thread_local std::unordered_map<int, cudnnHandle_t> handles;
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  cudnnHandle_t h = nullptr;
  check(cudnn(op).Create(&h), op, "cudnnCreate");
  handles.emplace(device, h);
  return h;
}

std::size_t workspace_limit() {
  static const std::size_t limit = [] {
    const char* v = std::getenv("LOOM_CUDNN_WORKSPACE_MB");
    return static_cast<std::size_t>(v ? std::atoll(v) : 1024) << 20;
  }();
  return limit;
}

// LOOM_CUDNN_DETERMINISTIC=1 keeps to algorithms cuDNN marks deterministic
// (some backward-filter and backward-data ones add with atomics, so two
// runs differ in the last bits): torch.backends.cudnn.deterministic's
// switch. Read at every choice, so a process can change it; the choices
// are cached per setting.
bool deterministic_only() {
  const char* v = std::getenv("LOOM_CUDNN_DETERMINISTIC");
  return v != nullptr && std::string(v) == "1";
}

// LOOM_CUDNN_LOG=1 prints each choice once, when it is made: cuDNN's
// algorithm numbers differ in accuracy as well as speed (a deterministic
// data-gradient algorithm of LeNet's 5x5 convolution erred by 2.3e-3 of
// the largest value on an H200; docs/gpu.md), and this tells which ran.
bool log_choices() {
  static const bool on = [] {
    const char* v = std::getenv("LOOM_CUDNN_LOG");
    return v != nullptr && std::string(v) == "1";
  }();
  return on;
}

bool allow_tf32() {
  static const bool allowed = [] {
    const char* v = std::getenv("LOOM_ALLOW_TF32");
    return v != nullptr && std::string(v) == "1";
  }();
  return allowed;
}

// The descriptors of one convolution, freed on scope exit.
struct Descriptors {
  cudnnTensorDescriptor_t image = nullptr, cols = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t filter = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  std::string key;  // the algorithm cache's key: every number above

  Descriptors(const char* op, const ConvGeometry& g, DType dtype) {
    const cudnnDataType_t t = dtype == DType::kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    LOOM_CHECK_KIND(dtype == DType::kFloat32 || dtype == DType::kFloat64, ErrorKind::kType, op,
                    ": no cuDNN kernel for dtype ", dtype_name(dtype));
    const int n = g.spatial_dims < 2 ? 2 : g.spatial_dims;  // cuDNN: 2-D at least
    std::vector<int> image{int(g.batch), int(g.image_channels)}, cols{int(g.batch), int(g.col_channels)};
    std::vector<int> filter{int(g.col_channels), int(g.image_channels / g.groups)}, bias{1, int(g.col_channels)};
    std::vector<int> pad, stride, dilation;
    for (int k = 3 - n; k < 3; ++k) {
      image.push_back(int(g.image[k]));
      cols.push_back(int(g.cols[k]));
      filter.push_back(int(g.kernel[k]));
      bias.push_back(1);
      pad.push_back(int(g.pad[k]));
      stride.push_back(int(g.stride[k]));
      dilation.push_back(int(g.dilation[k]));
    }
    auto dense = [](const std::vector<int>& dims) {
      std::vector<int> s(dims.size(), 1);
      for (int i = int(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
      return s;
    };
    check(dnn().CreateTensorDescriptor(&this->image), op, "cudnnCreateTensorDescriptor");
    check(dnn().CreateTensorDescriptor(&this->cols), op, "cudnnCreateTensorDescriptor");
    check(dnn().CreateTensorDescriptor(&this->bias), op, "cudnnCreateTensorDescriptor");
    check(dnn().CreateFilterDescriptor(&this->filter), op, "cudnnCreateFilterDescriptor");
    check(dnn().CreateConvolutionDescriptor(&conv), op, "cudnnCreateConvolutionDescriptor");
    check(dnn().SetTensorNdDescriptor(this->image, t, int(image.size()), image.data(), dense(image).data()), op,
          "cudnnSetTensorNdDescriptor (input)");
    check(dnn().SetTensorNdDescriptor(this->cols, t, int(cols.size()), cols.data(), dense(cols).data()), op,
          "cudnnSetTensorNdDescriptor (output)");
    check(dnn().SetTensorNdDescriptor(this->bias, t, int(bias.size()), bias.data(), dense(bias).data()), op,
          "cudnnSetTensorNdDescriptor (bias)");
    check(dnn().SetFilterNdDescriptor(this->filter, t, CUDNN_TENSOR_NCHW, int(filter.size()), filter.data()), op,
          "cudnnSetFilterNdDescriptor");
    check(dnn().SetConvolutionNdDescriptor(conv, n, pad.data(), stride.data(), dilation.data(),
                                          CUDNN_CROSS_CORRELATION, t),
          op, "cudnnSetConvolutionNdDescriptor");
    check(dnn().SetConvolutionGroupCount(conv, int(g.groups)), op, "cudnnSetConvolutionGroupCount");
    const bool tf32 = t == CUDNN_DATA_FLOAT && allow_tf32();
    check(dnn().SetConvolutionMathType(conv, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), op,
          "cudnnSetConvolutionMathType");
    for (const auto* v : {&image, &cols, &filter, &pad, &stride, &dilation}) {
      for (int d : *v) key += std::to_string(d) + ",";
      key += ";";
    }
    key += std::to_string(int(t)) + (tf32 ? "t" : "f") + std::to_string(g.groups);
  }
  ~Descriptors() {
    dnn().DestroyTensorDescriptor(image);
    dnn().DestroyTensorDescriptor(cols);
    dnn().DestroyTensorDescriptor(bias);
    dnn().DestroyFilterDescriptor(filter);
    dnn().DestroyConvolutionDescriptor(conv);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

// The fastest measured algorithm within the workspace limit, per (kind,
// shapes, device), and its workspace size. cudnnFind* runs each candidate
// once, so the first call of a shape costs a few convolutions.
template <typename Algo, typename Perf, typename Find>
std::pair<Algo, std::size_t> pick(const char* op, const std::string& key, Find&& find) {
  static std::mutex mutex;
  static std::map<std::string, std::pair<Algo, std::size_t>> cache;
  int device = 0;
  cudaGetDevice(&device);
  const bool deterministic = deterministic_only();
  const std::string full = std::to_string(device) + (deterministic ? "|d|" : "|") + key;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(full);
    if (it != cache.end()) return it->second;
  }
  constexpr int kMax = 16;
  Perf perf[kMax];
  int found = 0;
  find(kMax, &found, perf);
  std::pair<Algo, std::size_t> best{};
  bool ok = false;
  int chosen = 0;
  for (int i = 0; i < found && !ok; ++i) {  // sorted fastest first
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= workspace_limit() &&
        (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) {
      best = {perf[i].algo, perf[i].memory};
      chosen = i;
      ok = true;
    }
  }
  LOOM_CHECK_KIND(ok, ErrorKind::kRuntime, op, ": cuDNN found no ", deterministic ? "deterministic " : "",
                  "algorithm within the workspace limit of ", workspace_limit() >> 20,
                  " MiB (LOOM_CUDNN_WORKSPACE_MB", deterministic ? ", LOOM_CUDNN_DETERMINISTIC=1)" : ")");
  if (log_choices()) {
    std::fprintf(stderr, "loom %s: cuDNN algorithm %d of %d measured (%.3f ms, %zu workspace bytes)%s for %s\n",
                 op, static_cast<int>(best.first), found, static_cast<double>(perf[chosen].time), best.second,
                 deterministic ? ", deterministic only" : "", full.c_str());
  }
  std::lock_guard<std::mutex> lock(mutex);
  cache.emplace(full, best);
  return best;
}

NDArray workspace(std::size_t bytes, Device device) {
  return NDArray::empty({static_cast<std::int64_t>(bytes > 0 ? bytes : 1)}, DType::kUInt8, device);
}

template <typename T>
void add_bias(const char* op, cudnnHandle_t h, const Descriptors& d, cudnnTensorDescriptor_t target_desc,
              const NDArray& bias, NDArray& target) {
  if (!bias.defined()) return;
  const NDArray b = bias.contiguous();
  const T one = 1;
  check(dnn().AddTensor(h, &one, d.bias, b.data<const T>(), &one, target_desc, target.data<T>()), op,
        "cudnnAddTensor (bias)");
}

template <typename T>
void forward(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& w_in, const NDArray& bias) {
  constexpr const char* kOp = "convolution";
  const NDArray x = x_in.contiguous(), w = w_in.contiguous();
  cudnnHandle_t h = handle_for(kOp);
  const Descriptors d(kOp, g, out.dtype());
  const auto [algo, bytes] = pick<cudnnConvolutionFwdAlgo_t, cudnnConvolutionFwdAlgoPerf_t>(
      kOp, "fwd" + d.key, [&](int max, int* found, cudnnConvolutionFwdAlgoPerf_t* perf) {
        check(dnn().FindConvolutionForwardAlgorithm(h, d.image, d.filter, d.conv, d.cols, max, found, perf), kOp,
              "cudnnFindConvolutionForwardAlgorithm");
      });
  NDArray ws = workspace(bytes, out.device());
  const T one = 1, zero = 0;
  check(dnn().ConvolutionForward(h, &one, d.image, x.data<const T>(), d.filter, w.data<const T>(), d.conv, algo,
                                ws.data<std::uint8_t>(), bytes, &zero, d.cols, out.data<T>()),
        kOp, "cudnnConvolutionForward");
  if (bias.defined()) add_bias<T>(kOp, h, d, d.cols, bias, out);
}

template <typename T>
void transposed(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& w_in, const NDArray& bias) {
  constexpr const char* kOp = "deconvolution";
  const NDArray x = x_in.contiguous(), w = w_in.contiguous();
  cudnnHandle_t h = handle_for(kOp);
  const Descriptors d(kOp, g, out.dtype());
  const auto [algo, bytes] = pick<cudnnConvolutionBwdDataAlgo_t, cudnnConvolutionBwdDataAlgoPerf_t>(
      kOp, "bwd-data" + d.key, [&](int max, int* found, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
        check(dnn().FindConvolutionBackwardDataAlgorithm(h, d.filter, d.cols, d.conv, d.image, max, found, perf), kOp,
              "cudnnFindConvolutionBackwardDataAlgorithm");
      });
  NDArray ws = workspace(bytes, out.device());
  const T one = 1, zero = 0;
  check(dnn().ConvolutionBackwardData(h, &one, d.filter, w.data<const T>(), d.cols, x.data<const T>(), d.conv, algo,
                                     ws.data<std::uint8_t>(), bytes, &zero, d.image, out.data<T>()),
        kOp, "cudnnConvolutionBackwardData");
  if (bias.defined()) {
    // the bias has the image side's channels here: a descriptor of its own
    cudnnTensorDescriptor_t bd = nullptr;
    check(dnn().CreateTensorDescriptor(&bd), kOp, "cudnnCreateTensorDescriptor");
    const int n = g.spatial_dims < 2 ? 4 : g.spatial_dims + 2;
    std::vector<int> dims(n, 1), strides(n, 1);
    dims[1] = int(g.image_channels);
    strides[0] = int(g.image_channels);
    const cudnnDataType_t t = out.dtype() == DType::kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    check(dnn().SetTensorNdDescriptor(bd, t, n, dims.data(), strides.data()), kOp, "cudnnSetTensorNdDescriptor");
    const NDArray b = bias.contiguous();
    check(dnn().AddTensor(h, &one, bd, b.data<const T>(), &one, d.image, out.data<T>()), kOp, "cudnnAddTensor");
    dnn().DestroyTensorDescriptor(bd);
  }
}

template <typename T>
void weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& dy_in) {
  constexpr const char* kOp = "convolution_weight_grad";
  const NDArray x = x_in.contiguous(), dy = dy_in.contiguous();
  cudnnHandle_t h = handle_for(kOp);
  const Descriptors d(kOp, g, out.dtype());
  const auto [algo, bytes] = pick<cudnnConvolutionBwdFilterAlgo_t, cudnnConvolutionBwdFilterAlgoPerf_t>(
      kOp, "bwd-filter" + d.key, [&](int max, int* found, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
        check(dnn().FindConvolutionBackwardFilterAlgorithm(h, d.image, d.cols, d.conv, d.filter, max, found, perf),
              kOp, "cudnnFindConvolutionBackwardFilterAlgorithm");
      });
  NDArray ws = workspace(bytes, out.device());
  const T one = 1, zero = 0;
  check(dnn().ConvolutionBackwardFilter(h, &one, d.image, x.data<const T>(), d.cols, dy.data<const T>(), d.conv,
                                       algo, ws.data<std::uint8_t>(), bytes, &zero, d.filter, out.data<T>()),
        kOp, "cudnnConvolutionBackwardFilter");
}

}  // namespace

void convolution_cuda(NDArray& out, const NDArray& x, const NDArray& weight, const NDArray& bias, ReduceDims stride,
                      ReduceDims padding, ReduceDims dilation, std::int64_t groups) {
  const ConvGeometry g = conv_geometry("convolution", x.shape(), weight.shape(), stride, padding, dilation, groups);
  if (out.numel() == 0) return;
  cuda_select_device("convolution", out.device().id);
  if (depthwise_direct_cuda(g, out.dtype())) return depthwise_forward_cuda(g, out, x, weight, bias);
  by_dtype("convolution", out.dtype(), [&](auto tag) { forward<decltype(tag)>(g, out, x, weight, bias); });
}

void deconvolution_cuda(NDArray& out, const NDArray& x, const NDArray& weight, const NDArray& bias,
                        ReduceDims stride, ReduceDims padding, ReduceDims output_padding, ReduceDims dilation,
                        std::int64_t groups) {
  const ConvGeometry g = deconv_geometry("deconvolution", x.shape(), weight.shape(), stride, padding,
                                         output_padding, dilation, groups);
  if (out.numel() == 0) return;
  cuda_select_device("deconvolution", out.device().id);
  if (depthwise_direct_cuda(g, out.dtype())) return depthwise_data_grad_cuda(g, out, x, weight, bias);
  by_dtype("deconvolution", out.dtype(), [&](auto tag) { transposed<decltype(tag)>(g, out, x, weight, bias); });
}

void convolution_weight_grad_cuda(NDArray& out, const NDArray& x, const NDArray& grad_out, ReduceDims kernel,
                                  ReduceDims stride, ReduceDims padding, ReduceDims dilation, std::int64_t groups) {
  (void)kernel;  // the output's shape carries it
  const ConvGeometry g = conv_geometry("convolution_weight_grad", x.shape(), out.shape(), stride, padding, dilation,
                                       groups);
  if (out.numel() == 0) return;
  cuda_select_device("convolution_weight_grad", out.device().id);
  if (g.batch == 0) {  // no samples: a zero gradient
    cudaMemset(out.data<std::uint8_t>(), 0, static_cast<std::size_t>(out.nbytes()));
    return;
  }
  if (depthwise_direct_cuda(g, out.dtype())) return depthwise_weight_grad_cuda(g, out, x, grad_out);
  by_dtype("convolution_weight_grad", out.dtype(),
           [&](auto tag) { weight_grad<decltype(tag)>(g, out, x, grad_out); });
}

}  // namespace loom::kernels
#endif  // LOOM_WITH_CUDNN
