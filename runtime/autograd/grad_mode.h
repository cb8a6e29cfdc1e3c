// Whether operators record themselves for autograd, and whether layers run in
// training mode. Both are per thread (like MXNet's), off by default:
// `with lm.autograd.record():` turns recording (and training) on for the
// thread that entered it.
#pragma once

#include <optional>

namespace loom::autograd {

bool is_recording();
bool is_training();
// Each returns the previous value.
bool set_recording(bool on);
bool set_training(bool on);

// Sets recording (and, when given, training) for a scope and restores both.
class ModeScope {
 public:
  explicit ModeScope(bool recording, std::optional<bool> training = std::nullopt)
      : prev_recording_(set_recording(recording)),
        prev_training_(training ? set_training(*training) : is_training()) {}
  ~ModeScope() {
    set_recording(prev_recording_);
    set_training(prev_training_);
  }
  ModeScope(const ModeScope&) = delete;
  ModeScope& operator=(const ModeScope&) = delete;

 private:
  bool prev_recording_;
  bool prev_training_;
};

}  // namespace loom::autograd
