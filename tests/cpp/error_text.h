// The message of the loom::Error a call throws, or "(no error)": for tests
// that check what an error says.
#pragma once

#include <functional>
#include <string>

#include "microkernel/base/error.h"

namespace loom::testing {

inline std::string error_text(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace loom::testing
