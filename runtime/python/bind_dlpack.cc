// DLPack both ways, without copies: NDArray.__dlpack__ / __dlpack_device__
// (so np.from_dlpack, torch.from_dlpack read loom arrays in place) and
// lm.nd.from_dlpack (loom views of NumPy, PyTorch, CuPy... memory).
#include "runtime/python/bind_dlpack.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <mutex>
#include <vector>

#include "microkernel/base/error.h"

namespace nb = nanobind;
using namespace nb::literals;
using loom::DType;
using loom::NDArray;

namespace loom::python {
namespace {

struct DLType {
  DType dtype;
  nb::dlpack::dtype dl;
};

const std::vector<DLType>& dl_types() {
  using code = nb::dlpack::dtype_code;
  static const std::vector<DLType> types = {
      {DType::kFloat32, {uint8_t(code::Float), 32, 1}}, {DType::kFloat64, {uint8_t(code::Float), 64, 1}},
      {DType::kFloat16, {uint8_t(code::Float), 16, 1}}, {DType::kBFloat16, {uint8_t(code::Bfloat), 16, 1}},
      {DType::kInt8, {uint8_t(code::Int), 8, 1}},       {DType::kUInt8, {uint8_t(code::UInt), 8, 1}},
      {DType::kInt32, {uint8_t(code::Int), 32, 1}},     {DType::kInt64, {uint8_t(code::Int), 64, 1}},
      {DType::kBool, {uint8_t(code::Bool), 8, 1}},
  };
  return types;
}

// Releasing the producer's memory drops a Python reference, which needs the
// GIL. The last view may go on an engine worker while the Python thread holds
// the GIL and waits for that very worker, so a worker never blocks on it: it
// queues the release for the interpreter (Py_AddPendingCall), which runs it
// on the main thread at its next opportunity.
std::mutex g_release_lock;
std::vector<nb::ndarray<>*> g_releases;
bool g_release_scheduled = false;

int run_releases(void*) {
  std::vector<nb::ndarray<>*> due;
  {
    std::lock_guard<std::mutex> hold(g_release_lock);
    due.swap(g_releases);
    g_release_scheduled = false;
  }
  for (nb::ndarray<>* holder : due) delete holder;
  return 0;
}

void release_with_gil(nb::ndarray<>* holder) {
  if (!Py_IsInitialized()) return;  // at exit, after the interpreter: nothing left to release into
  if (PyGILState_Check()) {
    delete holder;
    return;
  }
  std::lock_guard<std::mutex> hold(g_release_lock);
  g_releases.push_back(holder);
  // A full pending-call queue leaves it scheduled by the next release.
  if (!g_release_scheduled) g_release_scheduled = Py_AddPendingCall(run_releases, nullptr) == 0;
}

// DLPack device types: kDLCPU = 1, kDLCUDA = 2.
int dl_device_type(const Device& d) { return d.is_cpu() ? 1 : 2; }

// A DLPack capsule viewing `a`'s memory, keeping its storage alive (an
// nb::ndarray without a framework converts to exactly that).
nb::object dlpack_capsule(const NDArray& a) {
  const DLType* t = nullptr;
  for (const DLType& c : dl_types()) {
    if (c.dtype == a.dtype()) t = &c;
  }
  LOOM_CHECK_KIND(t != nullptr, ErrorKind::kType, "__dlpack__: no DLPack type for ", dtype_name(a.dtype()));
  {
    // The consumer may read or write the memory at once: every pending op
    // on it finishes first.
    nb::gil_scoped_release release;
    a.wait_to_write();
  }
  // The consumer touches the memory without NDArray::raw_data: collectives
  // on it must now order the kernel stream at once (comm_lane.h).
  a.storage()->mark_exported();
  auto* keep = new NDArray(a.without_autograd());
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<NDArray*>(p); });
  std::vector<size_t> shape(a.shape().begin(), a.shape().end());
  std::vector<int64_t> strides(a.strides().begin(), a.strides().end());
  return nb::cast(nb::ndarray<>(a.raw_data(), shape.size(), shape.data(), owner, strides.data(), t->dl,
                                dl_device_type(a.device()), a.device().id));
}

NDArray from_dlpack(nb::ndarray<> in) {
  DType dtype = DType::kFloat32;
  bool found = false;
  for (const DLType& c : dl_types()) {
    if (c.dl == in.dtype()) {
      dtype = c.dtype;
      found = true;
    }
  }
  LOOM_CHECK_KIND(found, ErrorKind::kType, "from_dlpack: DLPack dtype (code ", int(in.dtype().code), ", ",
                  int(in.dtype().bits), " bits) has no loom equivalent");
  LOOM_CHECK_KIND(in.device_type() == 1 || in.device_type() == 2, ErrorKind::kNotImplemented,
                  "from_dlpack: DLPack device type ", in.device_type(), " is not supported (CPU and CUDA are)");
  const Device device = in.device_type() == 1 ? Device::cpu() : Device::gpu(in.device_id());
  Shape shape(in.ndim());
  Strides strides(in.ndim());
  for (size_t d = 0; d < in.ndim(); ++d) {
    shape[d] = static_cast<std::int64_t>(in.shape(d));
    strides[d] = in.stride(d);
  }
  const std::size_t item = dtype_size(dtype);
  bool empty = false;
  for (auto s : shape) empty |= s == 0;
  const ElementRange r = empty ? ElementRange{0, 0, false} : element_range(shape, strides, 0);
  // The storage spans every element the view can reach; the producer's
  // memory is released (its DLPack deleter runs) when the last view goes.
  auto* holder = new nb::ndarray<>(in);
  char* base = static_cast<char*>(in.data()) + r.lowest * static_cast<std::int64_t>(item);
  auto storage = std::make_shared<Storage>(
      base, static_cast<std::size_t>(r.highest - r.lowest + 1) * item, device,
      [holder]() { release_with_gil(holder); });
  return NDArray::on_storage(std::move(storage), shape, strides, -r.lowest, dtype);
}

}  // namespace

void bind_dlpack(nb::module_& m, nb::class_<NDArray>& cls) {
  // stream/max_version/dl_device/copy are accepted and ignored: CPU arrays
  // need no stream, and the capsule is DLPack 0.x, which consumers accept.
  cls.def("__dlpack__", [](const NDArray& a, nb::kwargs) { return dlpack_capsule(a); },
          "A DLPack capsule viewing this array's memory (no copy); keeps the memory alive.")
      .def("__dlpack_device__", [](const NDArray& a) {
        return nb::make_tuple(dl_device_type(a.device()), a.device().id);
      });
  m.def("from_dlpack", &from_dlpack, "array"_a,
        "An NDArray viewing the memory of any object with __dlpack__ (NumPy, PyTorch, ...), no copy:\n"
        "writes through either are seen by both.");
}

}  // namespace loom::python
