// x[index] = value for a basic index (ints, slices, None, ...): the write,
// and while autograd records, its history (PyTorch's index_put_ on a view).
#pragma once

#include "runtime/autograd/functions.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::autograd {

// Writes `value`, cast to x's dtype and broadcast to the selection, into the
// elements of `x` that `index` selects. While recording with x or value
// requiring grad, x's history is rebased onto an AssignBackward node whose
// inputs are x's old history (gradient: grad with the selection zeroed) and
// value (gradient: the selection of grad, summed to value's shape).
// Refused while recording, naming the reason: x is a leaf that requires
// grad, a recorded view of another array, or an array outside autograd that
// shares its memory with another (its base would not see the history).
void assign(NDArray& x, const BasicIndex& index, const NDArray& value);

}  // namespace loom::autograd
