#include "runtime/autograd/grad_mode.h"

namespace loom::autograd {
namespace {
thread_local bool t_recording = false;
thread_local bool t_training = false;
}  // namespace

bool is_recording() { return t_recording; }
bool is_training() { return t_training; }

bool set_recording(bool on) {
  const bool prev = t_recording;
  t_recording = on;
  return prev;
}

bool set_training(bool on) {
  const bool prev = t_training;
  t_training = on;
  return prev;
}

}  // namespace loom::autograd
