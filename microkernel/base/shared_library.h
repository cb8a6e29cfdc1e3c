// Opening a vendor library (NCCL, cuDNN) on first use instead of linking it.
//
// Why: torch's wheels bring their own NCCL and cuDNN. A process that loads
// loom's copy first makes torch run on it (the dynamic loader reuses a
// loaded soname), and torch refuses a cuDNN older than the one it was built
// for; two different NCCLs in one process clash outright. Opened lazily,
// loom shares whatever copy the process already has, and a process that
// never calls the library never loads it.
#pragma once

#include <string>

namespace loom {

// The copy of `soname` already in the process; else `configured_path` (the
// file configure found); else `soname` on the loader's search path. On
// failure returns nullptr and sets *error to a sentence naming `what`, the
// paths tried and the loader's reason.
void* open_shared_library(const char* soname, const char* configured_path, const char* what, std::string* error);

// dlsym, or a message in *error (the first missing symbol is kept).
void* find_symbol(void* library, const char* name, const char* what, std::string* error);

template <typename F>
void bind_symbol(void* library, F& slot, const char* name, const char* what, std::string* error) {
  slot = reinterpret_cast<F>(find_symbol(library, name, what, error));
}

}  // namespace loom
