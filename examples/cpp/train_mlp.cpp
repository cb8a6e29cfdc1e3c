// Training a small MLP from C++ with loom's generated operators and
// autograd: a 2-32-2 perceptron learns to tell two interleaved spirals
// apart (synthetic data), with plain SGD. Built by ninja
// (build/examples/train_mlp) and run by `ninja check`; exits non-zero if the
// training accuracy stays below 90%.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "loom/ops/add.h"
#include "loom/ops/log_softmax.h"
#include "loom/ops/matmul.h"
#include "loom/ops/mul.h"
#include "loom/ops/neg.h"
#include "loom/ops/relu.h"
#include "loom/ops/sub.h"
#include "loom/ops/sum.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"

using loom::NDArray;
namespace op = loom::op;
namespace ag = loom::autograd;

namespace {

NDArray from_vector(const std::vector<float>& v, const loom::Shape& shape) {
  return NDArray::from_host(v.data(), static_cast<std::int64_t>(v.size()), shape, loom::DType::kFloat32);
}

std::vector<float> to_vector(const NDArray& a) {
  std::vector<float> out(a.numel());
  a.copy_to_host(out.data());
  return out;
}

NDArray parameter(const loom::Shape& shape, float scale, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(loom::shape_numel(shape));
  for (float& x : v) x = normal(rng);
  NDArray p = from_vector(v, shape);
  ag::attach_grad(p, ag::GradReq::kWrite);
  return p;
}

}  // namespace

int main() {
  // Two spirals, 200 points each: (x, y) features, one-hot labels.
  const int n = 400;
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.08f);
  std::vector<float> features, onehot;
  for (int i = 0; i < n; ++i) {
    const int label = i % 2;
    const float t = 0.25f + 3.0f * static_cast<float>(i / 2) / (n / 2);
    const float angle = t * 2.2f + (label ? 3.14159f : 0.0f);
    features.push_back(t * std::cos(angle) / 3.0f + noise(rng));
    features.push_back(t * std::sin(angle) / 3.0f + noise(rng));
    onehot.push_back(label == 0 ? 1.0f : 0.0f);
    onehot.push_back(label == 1 ? 1.0f : 0.0f);
  }
  const NDArray x = from_vector(features, {n, 2});
  const NDArray y = from_vector(onehot, {n, 2});

  NDArray w1 = parameter({2, 64}, 1.0f, rng), b1 = parameter({64}, 0.0f, rng);
  NDArray w2 = parameter({64, 64}, 0.18f, rng), b2 = parameter({64}, 0.0f, rng);
  NDArray w3 = parameter({64, 2}, 0.18f, rng), b3 = parameter({2}, 0.0f, rng);
  std::vector<NDArray*> params = {&w1, &b1, &w2, &b2, &w3, &b3};
  const NDArray lr = ag::scalar_like(0.5, x);
  const NDArray inv_n = ag::scalar_like(1.0 / n, x);

  auto forward = [&] {
    NDArray h = op::relu(op::add(op::matmul(x, w1), b1));
    h = op::relu(op::add(op::matmul(h, w2), b2));
    return op::log_softmax(op::add(op::matmul(h, w3), b3));
  };
  float loss_value = 0;
  for (int step = 0; step <= 600; ++step) {
    NDArray loss;
    {
      ag::ModeScope record(true, true);
      loss = op::mul(op::neg(op::sum(op::mul(forward(), y))), inv_n);
    }
    ag::backward({loss}, {}, {});
    for (NDArray* p : params) op::sub_(*p, op::mul(p->autograd_meta()->grad, lr));  // SGD, in place
    loss_value = to_vector(loss)[0];
    if (step % 150 == 0) std::printf("step %4d  loss %.4f\n", step, loss_value);
  }
  const std::vector<float> logp = to_vector(forward());
  int correct = 0;
  for (int i = 0; i < n; ++i) correct += (logp[2 * i + 1] > logp[2 * i]) == (i % 2 == 1);
  const double accuracy = static_cast<double>(correct) / n;
  std::printf("training accuracy %.3f\n", accuracy);
  return accuracy >= 0.9 ? 0 : 1;
}
