#include "runtime/python/bind_comm.h"

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "microkernel/base/error.h"
#include "microkernel/comm/group.h"
#include "microkernel/comm/mpi_world.h"
#include "microkernel/comm/nccl_comm.h"
#include "runtime/comm/device_collectives.h"
#include "runtime/comm/rank_collectives.h"
#include "runtime/ndarray/ndarray.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace loom::python {
namespace {

using comm::Group;
using comm::GroupConfig;
using comm::Message;
using comm::MessageKind;
using comm::Role;

Role role_from(const std::string& name) {
  if (name == "scheduler") return Role::kScheduler;
  if (name == "server") return Role::kServer;
  if (name == "worker") return Role::kWorker;
  LOOM_THROW(ErrorKind::kValue, "comm: role must be 'scheduler', 'server' or 'worker', got '", name, "'");
}

comm::Members members_from(const std::string& name) {
  if (name == "workers") return comm::Members::kWorkers;
  if (name == "servers") return comm::Members::kServers;
  if (name == "all") return comm::Members::kAll;
  LOOM_THROW(ErrorKind::kValue, "comm: barrier members must be 'workers', 'servers' or 'all', got '", name, "'");
}

MessageKind kind_from(const std::string& name) {
  if (name == "data") return MessageKind::kData;
  if (name == "control") return MessageKind::kControl;
  LOOM_THROW(ErrorKind::kValue, "comm: a message kind is 'data' or 'control', got '", name, "'");
}

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// The body of a message: an array's host memory, sent without a copy. The
// array is waited for first (its pending writes finish), and its storage is
// held until ZeroMQ has sent it.
void attach_array(Message& m, const NDArray& array_in) {
  NDArray a = array_in.device().is_cpu() ? array_in.contiguous() : array_in.to(Device::cpu());
  a.wait_to_read();
  m.dtype = static_cast<std::int32_t>(a.dtype());
  m.shape.assign(a.shape().begin(), a.shape().end());
  m.body = a.raw_data();
  m.body_bytes = a.nbytes();
  if (m.body_bytes > 0) m.body_owner = std::shared_ptr<const void>(a.storage(), m.body);
}

// (kind, sender, key, meta, request, array or None)
using Received = std::tuple<std::string, int, std::string, nb::bytes, std::uint64_t, std::optional<NDArray>>;

Received received(Group& g, Message msg) {
  std::optional<NDArray> array;
  if (msg.dtype >= 0) {
    nb::gil_scoped_release release;
    LOOM_CHECK(msg.dtype < kNumDTypes, "comm: a message from ", g.describe(msg.sender),
               " names dtype code ", msg.dtype, ", which this loom does not have");
    Shape shape(msg.shape.begin(), msg.shape.end());
    const auto dtype = static_cast<DType>(msg.dtype);
    std::uint64_t bytes = dtype_size(dtype);
    for (const std::int64_t d : shape) {  // checked: a hostile shape must not wrap around
      LOOM_CHECK(!__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(d), &bytes), "comm: a message from ",
                 g.describe(msg.sender), " has an impossible shape ", shape_str(shape));
    }
    LOOM_CHECK(bytes == msg.body_bytes, "comm: a message from ", g.describe(msg.sender), " holds ", msg.body_bytes,
               " bytes for a ", dtype_name(dtype), " array of shape ", shape_str(shape));
    const std::int64_t count = shape_numel(shape);
    array = NDArray::from_host(msg.body, count, shape, dtype, Device::cpu());
  }
  const std::string kind = msg.kind == MessageKind::kData ? "data" : "control";
  return Received(kind, msg.sender, msg.key, nb::bytes(msg.meta.data(), msg.meta.size()), msg.request,
                  std::move(array));
}

}  // namespace

// comm/mpi_world.cc names dtypes by the runtime's codes.
static_assert(static_cast<int>(DType::kFloat32) == 0 && static_cast<int>(DType::kFloat64) == 1);

// A host copy of `a` that nothing else references (MPI writes into it).
NDArray private_host_copy(const NDArray& a) {
  NDArray out = NDArray::empty(a.shape(), a.dtype(), Device::cpu());
  a.copy_to_host(out.raw_data());
  return out;
}

void bind_mpi(nb::module_& c) {
  c.def("mpi_available", &comm::mpi_available, "Whether this build has the MPI all-reduce.");
  c.def(
      "mpi_world", [] { const comm::MpiWorld w = comm::mpi_world(); return std::make_tuple(w.rank, w.size); },
      "(rank, size) of this MPI job, initialising MPI the first time.");
  c.def(
      "mpi_allreduce",
      [](const NDArray& a) {
        NDArray out = private_host_copy(a);
        comm::mpi_allreduce_sum(out.raw_data(), out.raw_data(), out.numel(), static_cast<int>(out.dtype()));
        return out;
      },
      "array"_a, nb::call_guard<nb::gil_scoped_release>(),
      "A new host array: the sum of `array` over every rank (float32 or float64).");
  c.def(
      "mpi_broadcast",
      [](const NDArray& a, int root) {
        NDArray out = private_host_copy(a);
        comm::mpi_broadcast(out.raw_data(), out.nbytes(), root);
        return out;
      },
      "array"_a, "root"_a = 0, nb::call_guard<nb::gil_scoped_release>(), "A new host array: rank `root`'s `array`.");
  c.def("mpi_barrier", &comm::mpi_barrier, nb::call_guard<nb::gil_scoped_release>());
}

comm::ReduceOp reduce_op_from(const std::string& name) {
  if (name == "sum") return comm::ReduceOp::kSum;
  if (name == "prod") return comm::ReduceOp::kProd;
  if (name == "max") return comm::ReduceOp::kMax;
  if (name == "min") return comm::ReduceOp::kMin;
  if (name == "avg") return comm::ReduceOp::kAvg;
  LOOM_THROW(ErrorKind::kValue, "comm: op must be 'sum', 'prod', 'max', 'min' or 'avg', got '", name, "'");
}

void bind_nccl(nb::module_& c) {
  c.def("nccl_available", &comm::nccl_available, "Whether this build has NCCL (GPU collectives).");
  c.def("nccl_version", &comm::nccl_version, "NCCL's version as major * 10000 + minor * 100 + patch (0: none).");
  c.def(
      "nccl_all_reduce",
      [](const std::vector<NDArray>& arrays, const std::string& op) {
        return all_reduce_across_devices(arrays, reduce_op_from(op));
      },
      "arrays"_a, "op"_a = "sum", nb::call_guard<nb::gil_scoped_release>(),
      "New arrays, one on each input's GPU: op ('sum', 'prod', 'max', 'min', 'avg') over the inputs, one per GPU.");
  c.def("nccl_broadcast", &broadcast_across_devices, "arrays"_a, "root"_a = 0,
        nb::call_guard<nb::gil_scoped_release>(), "New arrays, one on each input's GPU, equal to arrays[root].");
  c.def(
      "nccl_mpi_all_reduce",
      [](const NDArray& a, const std::string& op) { return mpi_rank_collectives().all_reduce(a, reduce_op_from(op)); },
      "array"_a, "op"_a = "sum", nb::call_guard<nb::gil_scoped_release>(),
      "A new array on `array`'s GPU: op over every MPI rank's `array`, through one NCCL communicator for the job "
      "(made by the first call, on that GPU, with the unique id sent over MPI).");
  // A job's NCCL communicator whose unique id travels however the caller
  // likes: `share(bytes) -> bytes` is called once on every rank, with rank
  // 0's freshly drawn id there (and zeros elsewhere), and must return rank
  // 0's bytes on every rank. loom.kvstore's ZeroMQ group uses it to start
  // NCCL in jobs that loom.launch started without MPI.
  nb::class_<RankCollectives>(c, "RankCollectives",
                              "Collectives among the processes of a job, one GPU each, through one NCCL "
                              "communicator made at the first call.")
      .def(
          "__init__",
          [](RankCollectives* self, int rank, int size, nb::callable share) {
            auto pass_id = [share = nb::object(share)](void* data, std::size_t bytes) {
              nb::gil_scoped_acquire gil;
              nb::object got = share(nb::bytes(static_cast<const char*>(data), bytes));
              LOOM_CHECK_KIND(nb::isinstance<nb::bytes>(got), ErrorKind::kType,
                              "RankCollectives: share() must return bytes (rank 0's NCCL id)");
              const auto id = nb::borrow<nb::bytes>(got);
              LOOM_CHECK_KIND(id.size() == bytes, ErrorKind::kValue, "RankCollectives: share() returned ",
                              id.size(), " bytes; NCCL's unique id has ", bytes);
              std::memcpy(data, id.c_str(), bytes);
            };
            new (self) RankCollectives(rank, size, std::move(pass_id));
          },
          "rank"_a, "size"_a, "share"_a,
          "share(bytes) -> bytes hands rank 0's NCCL unique id to every rank (called once, by the first "
          "collective of any kind).")
      .def_prop_ro("rank", &RankCollectives::rank)
      .def_prop_ro("size", &RankCollectives::size)
      .def_prop_ro("device", &RankCollectives::device, nb::call_guard<nb::gil_scoped_release>(),
                   "The communicator's GPU, or -1 before the first call.")
      .def(
          "all_reduce",
          [](RankCollectives& r, const NDArray& a, const std::string& op) { return r.all_reduce(a, reduce_op_from(op)); },
          "array"_a, "op"_a = "sum", nb::call_guard<nb::gil_scoped_release>(),
          "A new array on `array`'s GPU: op over every rank's `array` (the first call is every rank's rendezvous).")
      .def("broadcast", &RankCollectives::broadcast, "array"_a, "root"_a = 0,
           nb::call_guard<nb::gil_scoped_release>(), "A new array on `array`'s GPU: rank `root`'s `array`.")
      .def("all_gather", &RankCollectives::all_gather, "array"_a, nb::call_guard<nb::gil_scoped_release>(),
           "A new array (size, *shape) on `array`'s GPU: every rank's `array`, stacked in rank order.")
      .def(
          "reduce_scatter",
          [](RankCollectives& r, const NDArray& a, const std::string& op) {
            return r.reduce_scatter(a, reduce_op_from(op));
          },
          "array"_a, "op"_a = "sum", nb::call_guard<nb::gil_scoped_release>(),
          "For `array` of shape (size, *rest): a new array of shape rest, op over the ranks' blocks array[rank].");
  c.def("nccl_all_gather", &all_gather_across_devices, "arrays"_a, nb::call_guard<nb::gil_scoped_release>(),
        "New arrays of shape (n, *shape), one on each input's GPU, stacking the n inputs in order.");
  c.def(
      "nccl_reduce_scatter",
      [](const std::vector<NDArray>& arrays, const std::string& op) {
        return reduce_scatter_across_devices(arrays, reduce_op_from(op));
      },
      "arrays"_a, "op"_a = "sum", nb::call_guard<nb::gil_scoped_release>(),
      "For n inputs of shape (n, *rest): new arrays of shape rest, the k-th on input k's GPU holding op over "
      "the inputs' k-th blocks.");
}

void bind_comm(nb::module_& m) {
  nb::module_ c = m.def_submodule("comm", "Processes as a group: messages, barriers, failure detection.");
  c.def("available", &comm::transport_available, "Whether this build has the ZeroMQ transport.");
  bind_mpi(c);
  bind_nccl(c);
  nb::class_<Group>(c, "Group")
      .def(
          "__init__",
          [](Group* self, const std::string& role, int rank, int num_workers, int num_servers,
             const std::string& scheduler, const std::string& host, double timeout, double heartbeat) {
            GroupConfig config;
            config.role = role_from(role);
            config.rank = rank;
            config.num_workers = num_workers;
            config.num_servers = num_servers;
            config.scheduler = scheduler.rfind("tcp://", 0) == 0 ? scheduler : "tcp://" + scheduler;
            config.host = host;
            config.timeout = ms(timeout);
            config.heartbeat = ms(heartbeat);
            nb::gil_scoped_release release;
            new (self) Group(config);
          },
          "role"_a, "rank"_a, "num_workers"_a, "num_servers"_a, "scheduler"_a, "host"_a = "127.0.0.1",
          "timeout"_a = 30.0, "heartbeat"_a = 1.0)
      .def_static(
          "from_env",
          [] {
            GroupConfig config = GroupConfig::from_env();
            nb::gil_scoped_release release;
            return std::make_unique<Group>(config);
          },
          "A Group configured by the LOOM_* variables the launcher sets.")
      .def_prop_ro("role", [](const Group& g) { return std::string(comm::role_name(g.role())); })
      .def_prop_ro("rank", &Group::rank)
      .def_prop_ro("node", &Group::node)
      .def_prop_ro("num_workers", &Group::num_workers)
      .def_prop_ro("num_servers", &Group::num_servers)
      .def("server_node", &Group::server_node, "rank"_a)
      .def("worker_node", &Group::worker_node, "rank"_a)
      .def("describe", &Group::describe, "node"_a)
      .def(
          "barrier", [](Group& g, const std::string& members) { auto which = members_from(members); nb::gil_scoped_release r; g.barrier(which); },
          "members"_a = "workers")
      .def(
          "send",
          [](Group& g, int node, const std::string& key, nb::bytes meta, const std::optional<NDArray>& array,
             const std::string& kind, std::uint64_t request) {
            Message msg;
            msg.kind = kind_from(kind);
            msg.key = key;
            msg.meta = std::string(meta.c_str(), meta.size());
            msg.request = request;
            nb::gil_scoped_release release;
            if (array) attach_array(msg, *array);
            g.send(node, std::move(msg));
          },
          "node"_a, "key"_a, "meta"_a = nb::bytes(""), "array"_a = nb::none(), "kind"_a = "data", "request"_a = 0,
          "Sends to `node`: `key`, a small `meta` payload and, optionally, an array's contents (a CPU array "
          "goes without a copy once its pending writes are done).")
      .def(
          "recv",
          [](Group& g, double timeout) -> Received {
            Message msg;
            {
              nb::gil_scoped_release release;
              msg = g.recv(ms(timeout));
            }
            return received(g, std::move(msg));
          },
          "timeout"_a = 30.0,
          "The next message: (kind, sender node, key, meta, request, array or None). Raises when the job "
          "failed, or when nothing arrives within `timeout` seconds.")
      .def(
          "poll",
          [](Group& g, double timeout) -> std::optional<Received> {
            std::optional<Message> msg;
            {
              nb::gil_scoped_release release;
              msg = g.poll(ms(timeout));
            }
            if (!msg) return std::nullopt;
            return received(g, std::move(*msg));
          },
          "timeout"_a = 1.0, "Like recv(), but None when nothing arrives in time.")
      .def("fail", &Group::fail, "why"_a, nb::call_guard<nb::gil_scoped_release>(),
           "Fails the job: every node's waits end with this reason.")
      .def_prop_ro("failure", &Group::failure)
      .def("all_left", &Group::all_left, "Scheduler: whether every other node has left normally.");
}

}  // namespace loom::python
