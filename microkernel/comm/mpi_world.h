// The processes of an MPI job (mpirun, srun with PMI) as one all-reduce
// group: the transport behind the 'dist_sync_allreduce' KVStore, which
// sums gradients among workers directly, with no servers.
//
// MPI is initialised on first use, with MPI_THREAD_MULTIPLE requested and
// only the calling thread ever used. It is finalised at exit. Every call
// blocks until all ranks have made it. A rank that dies makes MPI abort
// the job (mpirun's default error handler), so nothing waits forever.
//
// Built without MPI (configure found no Open MPI, or a sanitizer build),
// every call throws kNotImplemented saying what to install.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loom::comm {

bool mpi_available();

struct MpiWorld {
  int rank = 0;
  int size = 1;
};

// This process's rank and the job's size (initialising MPI the first time).
MpiWorld mpi_world();
// out[i] = the sum over ranks of in[i]; `dtype` is the runtime's dtype code
// (float32 or float64). in and out may be equal.
void mpi_allreduce_sum(const void* in, void* out, std::int64_t count, int dtype);
// Rank `root`'s `bytes` bytes at `data` replace everyone else's.
void mpi_broadcast(void* data, std::size_t bytes, int root);
void mpi_barrier();

}  // namespace loom::comm
