// Pieces both engines share. Private to microkernel/engine.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "microkernel/engine/engine.h"
#include "microkernel/engine/op_block.h"

namespace loom::engine::detail {

Var* new_var();
void destroy_var(Var* var);

// Copies the caller's lists into the op's: null Vars rejected, duplicates
// dropped, a Var both read and written kept as written only.
void collect_vars(const char* op_name, VarList reads, VarList writes, VarSet& out_reads,
                  VarSet& out_writes);

// The failure of the first failed Var the op uses, or null.
FailurePtr first_failure(const Op& op);

// The origin set by the innermost OriginScope on this thread, or null.
std::shared_ptr<const std::string> current_origin();

// A Completion that calls `complete` once.
Completion make_completion(const char* op_name, std::function<void(std::exception_ptr)> complete);

}  // namespace loom::engine::detail
