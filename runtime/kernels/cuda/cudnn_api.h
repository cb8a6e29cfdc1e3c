// cuDNN, opened on first use (microkernel/base/shared_library.h says why it
// is not linked): the functions loom's convolutions call, as pointers into
// whichever libcudnn the process has, checked to be the major version loom
// was compiled against.
#pragma once

#if LOOM_WITH_CUDNN
#include <cudnn.h>

namespace loom::kernels {

struct CudnnApi {
  decltype(&cudnnGetVersion) GetVersion = nullptr;
  decltype(&cudnnGetErrorString) GetErrorString = nullptr;
  decltype(&cudnnCreate) Create = nullptr;
  decltype(&cudnnCreateTensorDescriptor) CreateTensorDescriptor = nullptr;
  decltype(&cudnnDestroyTensorDescriptor) DestroyTensorDescriptor = nullptr;
  decltype(&cudnnSetTensorNdDescriptor) SetTensorNdDescriptor = nullptr;
  decltype(&cudnnCreateFilterDescriptor) CreateFilterDescriptor = nullptr;
  decltype(&cudnnDestroyFilterDescriptor) DestroyFilterDescriptor = nullptr;
  decltype(&cudnnSetFilterNdDescriptor) SetFilterNdDescriptor = nullptr;
  decltype(&cudnnCreateConvolutionDescriptor) CreateConvolutionDescriptor = nullptr;
  decltype(&cudnnDestroyConvolutionDescriptor) DestroyConvolutionDescriptor = nullptr;
  decltype(&cudnnSetConvolutionNdDescriptor) SetConvolutionNdDescriptor = nullptr;
  decltype(&cudnnSetConvolutionGroupCount) SetConvolutionGroupCount = nullptr;
  decltype(&cudnnSetConvolutionMathType) SetConvolutionMathType = nullptr;
  decltype(&cudnnFindConvolutionForwardAlgorithm) FindConvolutionForwardAlgorithm = nullptr;
  decltype(&cudnnFindConvolutionBackwardDataAlgorithm) FindConvolutionBackwardDataAlgorithm = nullptr;
  decltype(&cudnnFindConvolutionBackwardFilterAlgorithm) FindConvolutionBackwardFilterAlgorithm = nullptr;
  decltype(&cudnnConvolutionForward) ConvolutionForward = nullptr;
  decltype(&cudnnConvolutionBackwardData) ConvolutionBackwardData = nullptr;
  decltype(&cudnnConvolutionBackwardFilter) ConvolutionBackwardFilter = nullptr;
  decltype(&cudnnAddTensor) AddTensor = nullptr;
};

// The loaded API; the first call loads it. Throws a RuntimeError naming `op`
// when no usable cuDNN can be opened.
const CudnnApi& cudnn(const char* op);

}  // namespace loom::kernels
#endif
