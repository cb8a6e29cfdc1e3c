#include "runtime/ndarray/abstract_eval.h"

namespace loom {
namespace {
thread_local bool tl_abstract = false;
}  // namespace

bool abstract_eval() { return tl_abstract; }

AbstractEvalScope::AbstractEvalScope() : previous_(tl_abstract) { tl_abstract = true; }
AbstractEvalScope::~AbstractEvalScope() { tl_abstract = previous_; }

}  // namespace loom
