// Abstract evaluation: running ops for their shapes and dtypes only.
//
// Inside an AbstractEvalScope, NDArray::empty makes arrays without memory
// and launch() drops kernels, so calling an op runs exactly its argument
// checks and its shape and dtype rules, which is how graphs infer shapes
// (runtime/graph/infer.h) without a second copy of those rules. Reading an
// abstract array's values (raw_data()) raises: an op whose output shape
// depends on its input's values cannot be inferred ahead of time.
//
// The mode is per thread; kernels never run inside it, and arrays made from
// host data (scalars) are still real.
#pragma once

namespace loom {

bool abstract_eval();

class AbstractEvalScope {
 public:
  AbstractEvalScope();
  ~AbstractEvalScope();
  AbstractEvalScope(const AbstractEvalScope&) = delete;
  AbstractEvalScope& operator=(const AbstractEvalScope&) = delete;

 private:
  bool previous_;
};

}  // namespace loom
