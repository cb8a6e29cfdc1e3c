// The result shapes of the creation ops whose shape is not an attribute
// (shape: {fn: ...} in opdefs/creation/creation.yaml). The YAML's checks
// have run; these validate what only the shape needs.
#include <cmath>

#include "generated/kernels/arange.h"
#include "generated/kernels/eye.h"
#include "generated/kernels/linspace.h"
#include "microkernel/base/error.h"

namespace loom::kernels {

// NumPy's length: ceil((stop - start) / step) values, none when the step
// points away from stop.
Shape arange_shape(double start, double stop, double step) {
  LOOM_CHECK(std::isfinite(start) && std::isfinite(stop) && std::isfinite(step), "arange: start (", start,
             "), stop (", stop, ") and step (", step, ") must be finite");
  const double count = std::ceil((stop - start) / step);
  LOOM_CHECK(count < 9.0e15, "arange: ", count, " values from ", start, " to ", stop, " by ", step,
             " is more than an array can hold");
  return {count > 0 ? static_cast<std::int64_t>(count) : 0};
}

Shape linspace_shape(double start, double stop, std::int64_t num, bool /*endpoint*/) {
  LOOM_CHECK(std::isfinite(start) && std::isfinite(stop), "linspace: start (", start, ") and stop (", stop,
             ") must be finite");
  return {num};
}

Shape eye_shape(std::int64_t n, std::int64_t columns, std::int64_t /*k*/) { return {n, columns == 0 ? n : columns}; }

}  // namespace loom::kernels
