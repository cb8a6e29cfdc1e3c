// ctc_loss's checks, shared by the CPU and GPU kernels (ctc_kernels.h): the
// lengths and labels of every sample against the arrays' shapes.
#include "microkernel/base/error.h"
#include "runtime/kernels/ctc_kernels.h"

namespace loom::kernels {

CtcShape ctc_shape(const NDArray& log_probs, const NDArray& targets) {
  return {log_probs.shape()[0], log_probs.shape()[1], log_probs.shape()[2], targets.shape()[1]};
}

void check_ctc_lengths(const CtcShape& s, const std::int64_t* targets, const std::int64_t* input_lengths,
                       const std::int64_t* target_lengths, std::int64_t blank) {
  constexpr const char* kOp = "ctc_loss";
  for (std::int64_t n = 0; n < s.batch; ++n) {
    const std::int64_t frames = input_lengths[n], length = target_lengths[n];
    LOOM_CHECK(frames >= 0 && frames <= s.frames, kOp, ": input_lengths[", n, "] = ", frames, " is outside [0, ",
               s.frames, "] (log_probs has ", s.frames, " frames)");
    LOOM_CHECK(length >= 0 && length <= s.max_target, kOp, ": target_lengths[", n, "] = ", length,
               " is outside [0, ", s.max_target, "] (targets has ", s.max_target, " columns)");
    for (std::int64_t i = 0; i < length; ++i) {
      const std::int64_t c = targets[n * s.max_target + i];
      LOOM_CHECK_KIND(c >= 0 && c < s.classes && c != blank, ErrorKind::kIndex, kOp, ": targets[", n, ", ", i,
                      "] = ", c, " is not a class in [0, ", s.classes, ") other than blank (", blank, ")");
    }
  }
}

}  // namespace loom::kernels
