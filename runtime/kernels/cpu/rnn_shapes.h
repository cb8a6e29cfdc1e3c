// The shape rule the recurrent layers share (lstm.cc, gru.cc,
// simple_rnn.cc): x (steps, batch, input), w_ih (G * hidden, input), w_hh
// (G * hidden, hidden), optional biases (G * hidden,) and optional initial
// states (batch, hidden), for the layer's G gates a step (LSTM 4, GRU 3,
// plain RNN 1). Errors name the op, the input and both shapes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "microkernel/base/error.h"
#include "runtime/core/shape.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

using LayerInput = std::pair<const char*, const NDArray*>;

// Checks the inputs and returns hidden. `biases` and `states` name the
// optional inputs of each kind; undefined ones are skipped.
inline std::int64_t check_recurrent_layer(const char* op, int gates, const NDArray& x, const NDArray& w_ih,
                                          const NDArray& w_hh, std::initializer_list<LayerInput> biases,
                                          std::initializer_list<LayerInput> states) {
  const std::string rows = gates == 1 ? "hidden" : std::to_string(gates) + " * hidden";
  LOOM_CHECK(x.ndim() == 3, op, ": x must be (steps, batch, input), got ", x.describe());
  LOOM_CHECK(w_hh.ndim() == 2 && w_hh.shape()[0] == gates * w_hh.shape()[1], op, ": w_hh must be (", rows,
             ", hidden), got ", w_hh.describe());
  const std::int64_t h = w_hh.shape()[1], n = x.shape()[1];
  LOOM_CHECK(w_ih.ndim() == 2 && w_ih.shape()[0] == gates * h && w_ih.shape()[1] == x.shape()[2], op, ": w_ih must be (",
             rows, ", input) = (", gates * h, ", ", x.shape()[2], "), got ", w_ih.describe(), " for x ", x.describe());
  const Shape state{n, h}, bias{gates * h};
  for (const auto& [name, a] : states) {
    LOOM_CHECK(!a->defined() || a->shape() == state, op, ": ", name, " must be (batch, hidden) = (", n, ", ", h,
               "), got ", a->describe());
  }
  for (const auto& [name, a] : biases) {
    LOOM_CHECK(!a->defined() || a->shape() == bias, op, ": ", name, " must be (", rows, ",) = (", gates * h,
               ",), got ", a->describe());
  }
  return h;
}

}  // namespace loom::kernels
