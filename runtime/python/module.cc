// loom._C: the Python extension. Binds NDArray and the few runtime
// functions the Python package needs; every operator's binding is generated
// (generated/python/bind_<op>.cc) and registered by loom_bind_all_ops into
// the submodule loom._C.ops.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "microkernel/base/error.h"
#include "microkernel/engine/engine.h"
#include "microkernel/storage/storage.h"
#include "runtime/dispatch/op_registry.h"
#include "runtime/dispatch/launch.h"
#include "runtime/kernels/conv_geometry.h"
#include "runtime/kernels/cpu/blas_core.h"
#include "runtime/kernels/cpu/conv_dnnl.h"
#include "runtime/kernels/cpu/cpu_gemm.h"
#include "runtime/python/bind_autograd.h"
#include "runtime/python/bind_build_features.h"
#include "runtime/python/bind_dlpack.h"
#include "runtime/python/bind_graph.h"
#include "runtime/python/bind_operators.h"
#include "runtime/python/bind_comm.h"
#include "runtime/python/bind_profiler.h"
#include "runtime/python/bind_random.h"
#include "runtime/ndarray/ndarray.h"

namespace nb = nanobind;
using namespace nb::literals;
using loom::DType;
using loom::NDArray;

void loom_bind_all_ops(nb::module_& m);

namespace {

// Python exception classes per loom::ErrorKind, handed over by
// loom/errors.py at import. Kept alive for the life of the process.
PyObject* g_error_types[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};

void translate_errors(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const loom::Error& e) {
    PyObject* type = g_error_types[static_cast<int>(e.kind())];
    PyErr_SetString(type ? type : PyExc_RuntimeError, e.what());
  }
}

struct DTypeMap {
  DType dtype;
  nb::dlpack::dtype dl;
};

const std::vector<DTypeMap>& dtype_map() {
  static const std::vector<DTypeMap> map = {
      {DType::kFloat32, nb::dtype<float>()},   {DType::kFloat64, nb::dtype<double>()},
      {DType::kInt8, nb::dtype<int8_t>()},     {DType::kUInt8, nb::dtype<uint8_t>()},
      {DType::kInt32, nb::dtype<int32_t>()},   {DType::kInt64, nb::dtype<int64_t>()},
      {DType::kBool, nb::dtype<bool>()},
      {DType::kFloat16, nb::dlpack::dtype{static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float), 16, 1}},
  };
  return map;
}

using HostArray = nb::ndarray<nb::numpy, nb::c_contig, nb::device::cpu>;

NDArray from_numpy(HostArray arr, loom::Device device) {
  for (const DTypeMap& m : dtype_map()) {
    if (m.dl == arr.dtype()) {
      loom::Shape shape(arr.shape_ptr(), arr.shape_ptr() + arr.ndim());
      return NDArray::from_host(arr.data(), static_cast<int64_t>(arr.size()), shape, m.dtype, device);
    }
  }
  LOOM_THROW(loom::ErrorKind::kType, "array: NumPy dtype code ", int(arr.dtype().code), " bits ",
             int(arr.dtype().bits), " has no loom equivalent");
}

// From this size on, asnumpy lets NumPy allocate the result (see there).
constexpr std::size_t kNumpyAllocatedBytes = std::size_t{1} << 20;

nb::object to_numpy(const NDArray& a) {
  const DTypeMap* match = nullptr;
  for (const DTypeMap& m : dtype_map()) {
    if (m.dtype == a.dtype()) match = &m;
  }
  LOOM_CHECK_KIND(match != nullptr, loom::ErrorKind::kType, "asnumpy: ", loom::dtype_name(a.dtype()),
                  " has no NumPy dtype; convert first, e.g. a.astype('float32')");
  // A fresh host buffer owned by the NumPy array: later writes to `a` never
  // show through, and the NumPy array outlives `a` safely.
  const std::size_t bytes = a.nbytes();
  if (bytes >= kNumpyAllocatedBytes) {
    // NumPy's own allocator asks the kernel for huge pages for large
    // arrays; a buffer of ours took a page fault per 4 KiB. asnumpy of a
    // 64 MB array went from 44 ms to 8 ms.
    static const nb::handle empty = nb::object(nb::module_::import_("numpy").attr("empty")).release();
    nb::list shape;
    for (const std::int64_t d : a.shape()) shape.append(d);
    const std::string_view name = loom::dtype_name(a.dtype());
    nb::object out = empty(shape, nb::str(name.data(), name.size()));
    nb::object address = nb::borrow<nb::tuple>(out.attr("__array_interface__")["data"])[0];
    void* data = reinterpret_cast<void*>(nb::cast<std::uintptr_t>(address));
    nb::gil_scoped_release release;
    a.copy_to_host(data);
    return out;
  }
  // Small arrays: calling into NumPy would cost more than the copy (0.8 us
  // against 2 us per call). Not zero-filled: the copy writes every byte.
  std::unique_ptr<char[]> buffer(new char[bytes == 0 ? 1 : bytes]);  // freed if the copy throws
  {
    nb::gil_scoped_release release;
    a.copy_to_host(buffer.get());
  }
  nb::capsule owner(buffer.get(), [](void* p) noexcept { delete[] static_cast<char*>(p); });
  char* data = buffer.release();
  std::vector<size_t> shape(a.shape().begin(), a.shape().end());
  return nb::cast(nb::ndarray<nb::numpy>(data, shape.size(), shape.data(), owner, nullptr, match->dl));
}

}  // namespace

NB_MODULE(_C, m) {
  m.doc() = "loom's C++ core (NDArray, storage, generated operators).";
  nb::register_exception_translator(translate_errors);
#ifdef NDEBUG
  // Arrays a recorded graph still holds at exit (a result of a custom
  // autograd.Function keeps its Python node alive) outlive nanobind's
  // end-of-interpreter check, which then printed "leaked instances" to every
  // user of lm.autograd.Function. Debug builds keep the check.
  nb::set_leak_warnings(false);
#endif

  m.def("_set_error_types", [](nb::list types) {
    for (size_t i = 0; i < 5; ++i) {
      g_error_types[i] = types[i].ptr();
      Py_INCREF(g_error_types[i]);
    }
  });

  nb::enum_<loom::DeviceType>(m, "DeviceType")
      .value("cpu", loom::DeviceType::kCPU)
      .value("gpu", loom::DeviceType::kGPU);
  nb::class_<loom::Device>(m, "Device")
      .def(nb::init<loom::DeviceType, int>(), "type"_a, "id"_a = 0)
      .def_rw("type", &loom::Device::type)
      .def_rw("id", &loom::Device::id)
      .def("__eq__", &loom::Device::operator==)
      .def("__hash__", [](const loom::Device& d) { return int(d.type) * 1024 + d.id; })
      .def("__repr__", &loom::Device::str);

  auto ndarray = nb::class_<NDArray>(m, "NDArray");
  ndarray
      .def_prop_ro("shape", [](const NDArray& a) {
        nb::list dims;
        for (auto d : a.shape()) dims.append(d);
        return nb::tuple(dims);
      })
      .def_prop_ro("dtype", [](const NDArray& a) { return std::string(loom::dtype_name(a.dtype())); })
      .def_prop_ro("device", &NDArray::device)
      .def_prop_ro("ndim", &NDArray::ndim)
      .def_prop_ro("size", &NDArray::numel)
      .def("asnumpy", &to_numpy, "A NumPy copy of the values (waits for pending writes).")
      .def_prop_ro("strides", [](const NDArray& a) {
        nb::list s;
        for (auto v : a.strides()) s.append(v);
        return nb::tuple(s);
      }, "Strides in elements (not bytes, unlike NumPy).")
      .def("is_contiguous", &NDArray::is_contiguous)
      .def("_as_strided", [](const NDArray& a, std::vector<int64_t> shape, std::vector<int64_t> strides,
                             int64_t offset) { return a.as_strided(shape, strides, offset); },
           "shape"_a, "strides"_a, "offset"_a = 0)
      .def("_describe", &NDArray::describe)
      .def("wait_to_read", [](const NDArray& a) {
        a.wait_to_read();
        if (!a.device().is_cpu()) loom::storage::synchronize(a.device());
      }, nb::call_guard<nb::gil_scoped_release>(),
      "Waits until the pending ops that write this array have finished (on a GPU: its device's queued\n"
      "kernels); raises the error of one that failed.")
      .def("wait_to_write", &NDArray::wait_to_write, nb::call_guard<nb::gil_scoped_release>(),
           "Waits until every pending op that reads or writes this array's memory has finished.");
  loom::python::bind_autograd(m, ndarray);
  loom::python::bind_dlpack(m, ndarray);
  loom::python::bind_fast_operators(ndarray);
  loom::python::bind_random(m);
  loom::python::bind_profiler(m);
  loom::python::bind_build_features(m);
  loom::python::bind_comm(m);
  loom::python::bind_graph(m);

  m.def("from_numpy", &from_numpy, "array"_a, "device"_a,
        "A new NDArray holding a copy of a C-contiguous NumPy array.");
  m.def("gpu_count", &loom::storage::gpu_count);
  m.def("wait_all", [] {
    // Timed loops call this after every step: with nothing pending it costs
    // no GIL round trip.
    loom::engine::Engine& engine = loom::engine::Engine::get();
    if (engine.pending() == 0) {
      engine.wait_all();  // raises a failure nobody waited for
    } else {
      nb::gil_scoped_release release;
      engine.wait_all();
    }
    const int gpus = loom::storage::gpu_count();
    if (gpus > 0) {
      nb::gil_scoped_release release;
      for (int i = 0; i < gpus; ++i) loom::storage::synchronize(loom::Device::gpu(i));
    }
  }, "Waits for every op pushed so far and every GPU's queued kernels; raises the first asynchronous\n"
     "failure since the last wait_all that no wait has reported.");
  m.def("pending_ops", [] { return loom::engine::Engine::get().pending(); },
        "Ops pushed to the engine and not finished yet.");
  m.def("engine_kind", [] { return std::string(loom::engine::Engine::get().kind()); });
  m.def("inline_work_limit", &loom::inline_work_limit,
        "Elements up to which a CPU kernel with nothing pending runs on the calling thread (runtime/dispatch/launch.h).");
  m.def("set_inline_work_limit", &loom::set_inline_work_limit, "elements"_a,
        "Sets inline_work_limit (negative: no limit); returns the previous value.");
  m.def("synchronize", &loom::storage::synchronize, "device"_a, nb::call_guard<nb::gil_scoped_release>(),
        "Waits for the work queued on a device (kernels and collectives); raises a failed kernel's error.");
  m.def("memory_stats", [](const loom::Device& device) {
    auto s = loom::storage::stats(device);
    nb::dict d;
    d["in_use"] = s.in_use;
    d["peak"] = s.peak;
    d["cached"] = s.cached;
    d["alloc_count"] = s.alloc_count;
    d["system_allocs"] = s.system_allocs;
    return d;
  }, "device"_a, "Memory statistics of one device, in bytes.");
  m.def("blas_core", [] {
    nb::dict d;
    d["core"] = loom::kernels::blas_core();
    d["repair"] = loom::kernels::blas_core_repair();
    return d;
  }, "OpenBLAS's kernel set and what loom changed at load (runtime/kernels/cpu/blas_core.h).");
  m.def("check_cpu_gemm_env", &loom::kernels::check_cpu_gemm_env,
        "Raises ValueError for an unknown LOOM_CPU_GEMM (loom/__init__.py calls it at import).");
  m.def("cpu_gemm_backend", [](bool trans_a, bool trans_b, std::int64_t m_, std::int64_t n, std::int64_t k,
                               const std::string& dtype) {
    return std::string(loom::kernels::cpu_gemm_backend_name(
        loom::kernels::cpu_gemm_backend(trans_a, trans_b, m_, n, k, dtype == "float32")));
  }, "trans_a"_a, "trans_b"_a, "m"_a, "n"_a, "k"_a, "dtype"_a = "float32",
        "The library the CPU GEMM uses for this product (runtime/kernels/cpu/cpu_gemm.h).");
  m.def("conv_cpu_implementation",
        [](const std::vector<std::int64_t>& x, const std::vector<std::int64_t>& w, std::int64_t stride,
           std::int64_t padding, const std::string& direction) {
          const auto g = loom::kernels::conv_geometry("convolution", loom::Shape(x.begin(), x.end()),
                                                      loom::Shape(w.begin(), w.end()),
                                                      std::vector<std::int64_t>{stride},
                                                      std::vector<std::int64_t>{padding}, std::nullopt, 1);
          return loom::kernels::dnnl_conv_implementation(g, direction);
        },
        "x_shape"_a, "weight_shape"_a, "stride"_a = 1, "padding"_a = 0, "direction"_a = "forward",
        "oneDNN's kernel for this float32 convolution (e.g. jit_wino_4x3:avx512_core), or '' when loom's "
        "im2col + GEMM runs it (runtime/kernels/cpu/conv_dnnl.h).");
  m.def("release_cached", &loom::storage::release_cached,
        "Gives every pooled block, on every device, back to the system.");
  m.def("list_ops", [] {
    std::vector<std::string> names;
    for (const auto& op : loom::registered_ops()) names.push_back(op.name);
    return names;
  });
  m.def("op_info", [](const std::string& name) -> nb::object {
    const loom::OpInfo* op = loom::find_op(name);
    if (op == nullptr) return nb::none();
    nb::dict d;
    d["name"] = op->name;
    d["source"] = op->source;
    d["args"] = op->args;
    d["dtypes"] = op->dtypes;
    d["tags"] = op->tags;
    d["cuda"] = op->cuda;
    d["python_operators"] = op->python_operators;
    d["variants"] = op->variants;
    return d;
  });
#if LOOM_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
  m.attr("built_with_cudnn") = bool(LOOM_WITH_CUDNN);

  nb::module_ ops = m.def_submodule("ops", "Generated operator bindings (one per opdefs/ entry).");
  loom_bind_all_ops(ops);
}
