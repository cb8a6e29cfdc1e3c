#include "runtime/dispatch/update_call.h"

#include <algorithm>

#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "runtime/dispatch/launch.h"

namespace loom {

UpdateCall prepare_update(std::string_view op, std::initializer_list<NamedInput> inputs,
                          std::initializer_list<int> mutated) {
  check_inputs(op, inputs);
  const std::vector<NamedInput> in(inputs);
  const NDArray& first = *in[static_cast<std::size_t>(*mutated.begin())].array;
  const DType dtype = first.dtype();
  auto is_mutated = [&](int i) { return std::find(mutated.begin(), mutated.end(), i) != mutated.end(); };
  for (std::size_t i = 0; i < in.size(); ++i) {
    const NDArray& a = *in[i].array;
    LOOM_CHECK(a.shape() == first.shape(), op, ": ", in[i].name, " has shape ", shape_str(a.shape()), " but ",
               in[*mutated.begin()].name, " has shape ", shape_str(first.shape()),
               "; an update takes arrays of one shape");
    if (!is_mutated(static_cast<int>(i))) continue;
    LOOM_CHECK_KIND(a.dtype() == dtype, ErrorKind::kType, op, ": ", in[i].name, " has dtype ",
                    dtype_name(a.dtype()), " but ", in[*mutated.begin()].name, " has dtype ", dtype_name(dtype),
                    "; the arrays an update changes must share one dtype");
    for (std::size_t j = 0; j < in.size(); ++j) {
      LOOM_CHECK(j == i || in[j].array->storage() != a.storage(), op, ": ", in[i].name, " and ", in[j].name,
                 " share memory; an update needs separate arrays");
    }
  }
  UpdateCall call;
  call.n = first.numel();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const NDArray& a = *in[i].array;
    if (!is_mutated(static_cast<int>(i))) {
      call.arrays.push_back(a.astype(dtype).without_autograd().contiguous());
      call.reads.push_back(call.arrays.back());
      continue;
    }
    note_overwrite(a);
    if (a.is_contiguous()) {
      call.arrays.push_back(a.without_autograd());
    } else {
      NDArray dense = a.without_autograd().contiguous();
      call.arrays.push_back(dense);
      call.write_back.emplace_back(a.without_autograd(), dense);
    }
    call.writes.push_back(call.arrays.back());
  }
  return call;
}

void UpdateCall::finish() {
  for (auto& [target, dense] : write_back) op::copy_out(target, dense);
}

}  // namespace loom
