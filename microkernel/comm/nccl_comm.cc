// See nccl_comm.h.
#include "microkernel/comm/nccl_comm.h"

#include <algorithm>
#include <string>

#include "microkernel/base/error.h"
#include "microkernel/base/shared_library.h"

#if LOOM_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <mutex>
#endif

namespace loom::comm {

#if LOOM_WITH_NCCL

struct NcclComm::Handle {
  ncclComm_t comm = nullptr;
};

namespace {

// NCCL is opened on first use, not linked: a process that never calls it
// never loads it, and one that already has an NCCL (torch's, from its
// wheel) shares that one instead of loading a second libnccl.so.2, whose
// symbols would clash with the first. The functions loom calls are in
// every NCCL since 2.13 (ncclGetLastError).
struct Api {
  void* library = nullptr;
  std::string error;
  decltype(&ncclGetVersion) get_version = nullptr;
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitAll) comm_init_all = nullptr;
  decltype(&ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
  decltype(&ncclReduceScatter) reduce_scatter = nullptr;
  decltype(&ncclGroupStart) group_start = nullptr;
  decltype(&ncclGroupEnd) group_end = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  decltype(&ncclGetLastError) last_error = nullptr;
};

template <typename F>
void bind(Api& api, F& slot, const char* name) {
  bind_symbol(api.library, slot, name, "NCCL", &api.error);
}

const Api& api() {
  static Api loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    Api& a = loaded;
    a.library = open_shared_library("libnccl.so.2", LOOM_NCCL_LIBRARY, "NCCL", &a.error);
    if (!a.library) return;
    bind(a, a.get_version, "ncclGetVersion");
    bind(a, a.get_unique_id, "ncclGetUniqueId");
    bind(a, a.comm_init_all, "ncclCommInitAll");
    bind(a, a.comm_init_rank, "ncclCommInitRank");
    bind(a, a.comm_destroy, "ncclCommDestroy");
    bind(a, a.all_reduce, "ncclAllReduce");
    bind(a, a.broadcast, "ncclBroadcast");
    bind(a, a.all_gather, "ncclAllGather");
    bind(a, a.reduce_scatter, "ncclReduceScatter");
    bind(a, a.group_start, "ncclGroupStart");
    bind(a, a.group_end, "ncclGroupEnd");
    bind(a, a.error_string, "ncclGetErrorString");
    bind(a, a.last_error, "ncclGetLastError");
    if (!a.error.empty()) a.error += " (NCCL >= 2.13 needed)";
  });
  return loaded;
}

// The loaded API, or a RuntimeError saying why there is none.
const Api& nccl() {
  const Api& a = api();
  LOOM_CHECK_KIND(a.error.empty(), ErrorKind::kRuntime, "comm: ", a.error);
  return a;
}

void check(ncclResult_t status, const char* what, ncclComm_t comm = nullptr) {
  if (status == ncclSuccess || status == ncclInProgress) return;
  const char* last = nccl().last_error(comm);
  LOOM_THROW(ErrorKind::kRuntime, "comm: NCCL ", what, " failed: ", nccl().error_string(status),
             last && *last ? std::string(" (") + last + ")" : std::string());
}

void select(int device, const char* what) {
  const cudaError_t status = cudaSetDevice(device);
  LOOM_CHECK_KIND(status == cudaSuccess, ErrorKind::kRuntime, "comm: NCCL ", what, ": cannot select gpu(", device,
                  "): ", cudaGetErrorString(status));
}

// The runtime's dtype codes (runtime/core/dtype.h): float32, float64,
// float16, bfloat16, int8, uint8, int32, int64; bool has no NCCL type.
ncclDataType_t nccl_type(int dtype) {
  switch (dtype) {
    case 0: return ncclFloat32;
    case 1: return ncclFloat64;
    case 2: return ncclFloat16;
    case 3: return ncclBfloat16;
    case 4: return ncclInt8;
    case 5: return ncclUint8;
    case 6: return ncclInt32;
    case 7: return ncclInt64;
    default: break;
  }
  LOOM_THROW(ErrorKind::kType, "comm: NCCL has no type for dtype code ", dtype,
             " (float32, float64, float16, bfloat16, int8, uint8, int32 and int64 are supported)");
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kProd: return ncclProd;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
    case ReduceOp::kAvg: return ncclAvg;
  }
  return ncclSum;
}

void check_count(std::int64_t count, const char* what) {
  LOOM_CHECK(count >= 0, "comm: NCCL ", what, ": negative element count ", count);
}

}  // namespace

bool nccl_available() { return api().error.empty(); }

int nccl_version() {
  int version = 0;
  if (nccl_available()) nccl().get_version(&version);
  // NCCL >= 2.9 codes x.y.z as x*10000 + y*100 + z already
  return version;
}

NcclUniqueId nccl_unique_id() {
  ncclUniqueId id;
  check(nccl().get_unique_id(&id), "unique id");
  NcclUniqueId out{};
  static_assert(sizeof(id.internal) == sizeof(NcclUniqueId));
  std::copy(std::begin(id.internal), std::end(id.internal), out.begin());
  return out;
}

NcclComm::NcclComm(std::unique_ptr<Handle> handle, int rank, int size, int device)
    : handle_(std::move(handle)), rank_(rank), size_(size), device_(device) {}

std::vector<std::unique_ptr<NcclComm>> NcclComm::for_devices(const std::vector<int>& devices) {
  LOOM_CHECK(!devices.empty(), "comm: NCCL communicators need at least one GPU");
  std::vector<int> sorted = devices;
  std::sort(sorted.begin(), sorted.end());
  LOOM_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
             "comm: NCCL communicators need distinct GPUs, one rank each; got a GPU twice among ", devices.size());
  int visible = 0;
  cudaGetDeviceCount(&visible);
  for (int d : devices) {
    LOOM_CHECK_KIND(d >= 0 && d < visible, ErrorKind::kIndex, "comm: NCCL: gpu(", d, ") does not exist (", visible,
                    " GPUs visible)");
  }
  std::vector<ncclComm_t> comms(devices.size());
  check(nccl().comm_init_all(comms.data(), static_cast<int>(devices.size()), devices.data()), "communicator setup");
  std::vector<std::unique_ptr<NcclComm>> out;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    auto handle = std::make_unique<Handle>();
    handle->comm = comms[i];
    out.push_back(std::unique_ptr<NcclComm>(
        new NcclComm(std::move(handle), static_cast<int>(i), static_cast<int>(devices.size()), devices[i])));
  }
  return out;
}

NcclComm::NcclComm(const NcclUniqueId& id, int rank, int size, int device)
    : handle_(std::make_unique<Handle>()), rank_(rank), size_(size), device_(device) {
  LOOM_CHECK(size > 0 && rank >= 0 && rank < size, "comm: NCCL: rank ", rank, " is outside a group of ", size);
  select(device, "communicator setup");
  ncclUniqueId raw;
  std::copy(id.begin(), id.end(), raw.internal);
  check(nccl().comm_init_rank(&handle_->comm, size, raw, rank), "communicator setup");
}

NcclComm::~NcclComm() {
  if (handle_ && handle_->comm) nccl().comm_destroy(handle_->comm);
}

void NcclComm::all_reduce(const void* send, void* recv, std::int64_t count, int dtype, ReduceOp op, void* stream) {
  check_count(count, "all_reduce");
  select(device_, "all_reduce");
  check(nccl().all_reduce(send, recv, static_cast<std::size_t>(count), nccl_type(dtype), nccl_op(op), handle_->comm,
                      static_cast<cudaStream_t>(stream)),
        "all_reduce", handle_->comm);
}

void NcclComm::broadcast(const void* send, void* recv, std::int64_t count, int dtype, int root, void* stream) {
  check_count(count, "broadcast");
  LOOM_CHECK_KIND(root >= 0 && root < size_, ErrorKind::kIndex, "comm: NCCL broadcast: root ", root,
                  " is outside a group of ", size_);
  select(device_, "broadcast");
  check(nccl().broadcast(send, recv, static_cast<std::size_t>(count), nccl_type(dtype), root, handle_->comm,
                            static_cast<cudaStream_t>(stream)),
        "broadcast", handle_->comm);
}

void NcclComm::all_gather(const void* send, void* recv, std::int64_t count, int dtype, void* stream) {
  check_count(count, "all_gather");
  select(device_, "all_gather");
  check(nccl().all_gather(send, recv, static_cast<std::size_t>(count), nccl_type(dtype), handle_->comm,
                             static_cast<cudaStream_t>(stream)),
        "all_gather", handle_->comm);
}

void NcclComm::reduce_scatter(const void* send, void* recv, std::int64_t count, int dtype, ReduceOp op,
                              void* stream) {
  check_count(count, "reduce_scatter");
  select(device_, "reduce_scatter");
  check(nccl().reduce_scatter(send, recv, static_cast<std::size_t>(count), nccl_type(dtype), nccl_op(op), handle_->comm,
                          static_cast<cudaStream_t>(stream)),
        "reduce_scatter", handle_->comm);
}

void nccl_group(const std::function<void()>& fn) {
  check(nccl().group_start(), "group start");
  try {
    fn();
  } catch (...) {
    nccl().group_end();
    throw;
  }
  check(nccl().group_end(), "group end");
}

#else  // !LOOM_WITH_NCCL

struct NcclComm::Handle {};

namespace {
[[noreturn]] void missing() {
  LOOM_THROW(ErrorKind::kNotImplemented, "comm: this loom was built without NCCL (install the CUDA toolkit with "
             "NCCL, e.g. the nvidia-nccl-cu13 wheel or libnccl-dev, then re-run configure.py)");
}
}  // namespace

bool nccl_available() { return false; }
int nccl_version() { return 0; }
NcclUniqueId nccl_unique_id() { missing(); }
std::vector<std::unique_ptr<NcclComm>> NcclComm::for_devices(const std::vector<int>&) { missing(); }
NcclComm::NcclComm(std::unique_ptr<Handle>, int, int, int) : rank_(0), size_(0), device_(0) { missing(); }
NcclComm::NcclComm(const NcclUniqueId&, int, int, int) : rank_(0), size_(0), device_(0) { missing(); }
NcclComm::~NcclComm() = default;
void NcclComm::all_reduce(const void*, void*, std::int64_t, int, ReduceOp, void*) { missing(); }
void NcclComm::broadcast(const void*, void*, std::int64_t, int, int, void*) { missing(); }
void NcclComm::all_gather(const void*, void*, std::int64_t, int, void*) { missing(); }
void NcclComm::reduce_scatter(const void*, void*, std::int64_t, int, ReduceOp, void*) { missing(); }
void nccl_group(const std::function<void()>&) { missing(); }

#endif  // LOOM_WITH_NCCL

}  // namespace loom::comm
