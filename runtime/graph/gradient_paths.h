// Which gradient formulas a fused group's backward runs (fuse_pointwise_grad.h):
// those on a path from the root back to an input that wants a gradient.
// Shared by the CPU tiles and the GPU kernel's source, which must agree.
#pragma once

#include <string_view>
#include <vector>

namespace loom::graph {

struct GradientPaths {
  // Per member, per argument: run the member's gradient formula for it.
  std::vector<std::vector<unsigned char>> along;
  std::vector<unsigned char> member_needed;  // a gradient reaches the member (the root's is given)
  std::vector<unsigned char> input_reached;  // the external input gets a gradient
  bool any = false;                          // some input does
  // What the walk reads (mark_reads): members whose results a formula
  // reads, with everything they are computed from, and inputs read either
  // way. The others are neither recomputed nor read (add's and sub's
  // formulas read nothing but the gradient).
  std::vector<unsigned char> member_computed;
  std::vector<unsigned char> input_read;
};

// `refs`: per member, per argument, input k >= 0 or member -(j + 1) (members
// in topological order, the root last); `wanted`: per input; `has_grad(m, k)`:
// member m's op has a gradient formula for its argument k (false: none flows).
template <typename HasGrad>
GradientPaths gradient_paths(const std::vector<std::vector<int>>& refs, const std::vector<unsigned char>& wanted,
                             HasGrad&& has_grad) {
  const std::size_t members = refs.size();
  GradientPaths p;
  p.along.resize(members);
  p.member_needed.assign(members, 0);
  p.input_reached.assign(wanted.size(), 0);
  if (members == 0) return p;
  // leads[j]: member j's result depends, through formulas, on a wanted input
  std::vector<unsigned char> leads(members, 0);
  auto behind = [&](int r) { return r >= 0 ? wanted[r] != 0 : leads[-r - 1] != 0; };
  for (std::size_t m = 0; m < members; ++m) {
    for (std::size_t k = 0; k < refs[m].size(); ++k) {
      if (has_grad(m, k) && behind(refs[m][k])) leads[m] = 1;
    }
  }
  p.any = leads[members - 1] != 0;
  p.member_needed[members - 1] = leads[members - 1];
  for (std::size_t m = members; m-- > 0;) {  // readers come after what they read
    p.along[m].assign(refs[m].size(), 0);
    if (!p.member_needed[m]) continue;
    for (std::size_t k = 0; k < refs[m].size(); ++k) {
      const int r = refs[m][k];
      if (!has_grad(m, k) || !behind(r)) continue;
      p.along[m][k] = 1;
      (r >= 0 ? p.input_reached[r] : p.member_needed[-r - 1]) = 1;
    }
  }
  return p;
}

// Fills p.member_computed and p.input_read. `operands(m, k)`: the operand
// codes of member m's gradient formula for argument k (FusionGradSource::
// operands: 'g' the gradient, 'o' the member's result, a digit its argument).
template <typename Operands>
void mark_reads(const std::vector<std::vector<int>>& refs, GradientPaths& p, Operands&& operands) {
  p.member_computed.assign(refs.size(), 0);
  p.input_read.assign(p.input_reached.size(), 0);
  auto read = [&](int r) { (r >= 0 ? p.input_read[r] : p.member_computed[-r - 1]) = 1; };
  for (std::size_t m = 0; m < refs.size(); ++m) {
    for (std::size_t k = 0; k < refs[m].size(); ++k) {
      if (!p.along[m][k]) continue;
      for (char c : std::string_view(operands(m, k))) {
        if (c == 'o') p.member_computed[m] = 1;
        if (c >= '0' && c <= '9' && static_cast<std::size_t>(c - '0') < refs[m].size()) read(refs[m][c - '0']);
      }
    }
  }
  for (std::size_t m = refs.size(); m-- > 0;) {  // a computed member reads all its arguments
    if (!p.member_computed[m]) continue;
    for (int r : refs[m]) read(r);
  }
}

}  // namespace loom::graph
