// VarSet: an op's short list of Vars, stored inline. Most ops touch one to
// four Vars; keeping them in the op saves an allocation per list per push.
// Private to microkernel/engine.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace loom::engine {

class Var;

class VarSet {
 public:
  void push_back(Var* var) {
    if (size_ < kInline) {
      inline_[size_] = var;
    } else {
      if (size_ == kInline) spilled_.assign(inline_, inline_ + kInline);
      spilled_.push_back(var);
    }
    ++size_;
  }
  bool contains(const Var* var) const { return std::find(begin(), end(), var) != end(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Var* const* begin() const { return size_ <= kInline ? inline_ : spilled_.data(); }
  Var* const* end() const { return begin() + size_; }

 private:
  static constexpr std::size_t kInline = 4;
  Var* inline_[kInline] = {};
  std::vector<Var*> spilled_;  // all of them, once there are more than kInline
  std::size_t size_ = 0;
};

}  // namespace loom::engine
