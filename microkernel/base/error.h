// loom's one error type and its check macro.
//
// Contract: every failure inside loom is a loom::Error thrown with a message a
// user can act on: the operation, the shapes/dtypes/devices involved, and what
// was expected, e.g.
//   add: cannot broadcast shapes (2, 3) and (4, 5) (dim 1: 3 vs 5)
// Boundaries turn it into something else: the C API into a status code plus a
// thread-local message, the Python binding into lm.LoomError (a subclass per
// ErrorKind). Safe to throw from any thread.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace loom {

// What kind of mistake it was; the Python binding maps each kind to an
// exception class that also derives from the matching built-in
// (ValueError, TypeError, ...) so `except ValueError` keeps working.
enum class ErrorKind {
  kValue,          // a bad value or shape (ValueError)
  kType,           // an unsupported dtype or wrong argument type (TypeError)
  kIndex,          // an index or axis out of range (IndexError)
  kNotImplemented, // valid request, not built in this configuration
  kRuntime,        // anything else that went wrong while running
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message)
      : std::runtime_error(std::move(message)), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

}  // namespace loom

// LOOM_CHECK(cond, parts...): throws loom::Error(kValue) whose message is the
// parts streamed together. The parts are only evaluated when cond is false.
#define LOOM_CHECK(cond, ...) \
  LOOM_CHECK_KIND(cond, ::loom::ErrorKind::kValue, __VA_ARGS__)

#define LOOM_CHECK_KIND(cond, kind, ...)                                  \
  do {                                                                    \
    if (!(cond)) [[unlikely]] {                                           \
      throw ::loom::Error((kind), ::loom::detail::concat(__VA_ARGS__));   \
    }                                                                     \
  } while (0)

#define LOOM_THROW(kind, ...) \
  throw ::loom::Error((kind), ::loom::detail::concat(__VA_ARGS__))
