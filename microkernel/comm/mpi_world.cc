// See mpi_world.h.
#include "microkernel/comm/mpi_world.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>

#include "microkernel/base/error.h"

#if LOOM_WITH_MPI
#include <mpi.h>
#endif

namespace loom::comm {

#if LOOM_WITH_MPI

namespace {

// The runtime's dtype codes (runtime/core/dtype.h), which the comm layer
// receives as plain ints: only the ones an all-reduce supports.
constexpr int kFloat32 = 0, kFloat64 = 1;

void check(int status, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  LOOM_THROW(ErrorKind::kRuntime, "comm: MPI ", what, " failed: ", std::string(text, length));
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void ensure_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "initialisation");
      std::atexit(finalize_at_exit);
    }
  });
}

MPI_Datatype mpi_type(int dtype) {
  switch (dtype) {
    case kFloat32: return MPI_FLOAT;
    case kFloat64: return MPI_DOUBLE;
    default: break;
  }
  LOOM_THROW(ErrorKind::kType, "comm: the MPI all-reduce sums float32 or float64 arrays, got dtype code ", dtype);
}

}  // namespace

bool mpi_available() { return true; }

MpiWorld mpi_world() {
  ensure_initialized();
  MpiWorld w;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank), "Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &w.size), "Comm_size");
  return w;
}

void mpi_allreduce_sum(const void* in, void* out, std::int64_t count, int dtype) {
  ensure_initialized();
  const MPI_Datatype type = mpi_type(dtype);
  // MPI counts are int: large arrays go in chunks.
  constexpr std::int64_t kChunk = std::int64_t{1} << 30;
  const std::size_t element = dtype == kFloat64 ? 8 : 4;
  for (std::int64_t done = 0; done < count; done += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, count - done));
    const void* src = in == out ? MPI_IN_PLACE : static_cast<const char*>(in) + done * element;
    check(MPI_Allreduce(src, static_cast<char*>(out) + done * element, n, type, MPI_SUM, MPI_COMM_WORLD),
          "Allreduce");
  }
}

void mpi_broadcast(void* data, std::size_t bytes, int root) {
  ensure_initialized();
  constexpr std::size_t kChunk = std::size_t{1} << 30;
  for (std::size_t done = 0; done < bytes; done += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, bytes - done));
    check(MPI_Bcast(static_cast<char*>(data) + done, n, MPI_BYTE, root, MPI_COMM_WORLD), "Bcast");
  }
}

void mpi_barrier() {
  ensure_initialized();
  check(MPI_Barrier(MPI_COMM_WORLD), "Barrier");
}

#else  // built without MPI

namespace {
[[noreturn]] void unavailable() {
  LOOM_THROW(ErrorKind::kNotImplemented,
             "comm: this loom was built without MPI (apt-get install libopenmpi-dev openmpi-bin, then re-run "
             "configure.py; sanitizer builds leave it out)");
}
}  // namespace

bool mpi_available() { return false; }
MpiWorld mpi_world() { unavailable(); }
void mpi_allreduce_sum(const void*, void*, std::int64_t, int) { unavailable(); }
void mpi_broadcast(void*, std::size_t, int) { unavailable(); }
void mpi_barrier() { unavailable(); }

#endif

}  // namespace loom::comm
