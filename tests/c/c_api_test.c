/* The C API from C11: arrays in and out, a generated operator with and
 * without out=, an attribute and int[] dims, broadcasting and matmul,
 * errors as status codes with a message naming the operation, autograd.
 * Exits non-zero on the first failed check. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loom/c/ops.h"

static int failures = 0;

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",     \
              __FILE__, __LINE__, #cond, loom_last_error());            \
      ++failures;                                                       \
    }                                                                   \
  } while (0)

static int close_to(const float* got, const float* want, int n) {
  for (int i = 0; i < n; ++i) {
    if (fabsf(got[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i]))) return 0;
  }
  return 1;
}

int main(void) {
  const int64_t shape23[2] = {2, 3}, shape3[1] = {3}, shape32[2] = {3, 2};
  const float a_data[6] = {-1, 2, -3, 4, -5, 6};
  const float b_data[3] = {10, 20, 30};
  const float m_data[6] = {1, 0, 0, 1, 1, 1};
  LoomArray a = NULL, b = NULL, m = NULL, r = NULL, s = NULL, p = NULL, bad = NULL;
  float out[6];

  CHECK(loom_array_from_data(a_data, shape23, 2, LOOM_FLOAT32, &a) == LOOM_OK);
  CHECK(loom_array_from_data(b_data, shape3, 1, LOOM_FLOAT32, &b) == LOOM_OK);
  CHECK(loom_array_from_data(m_data, shape32, 2, LOOM_FLOAT32, &m) == LOOM_OK);

  /* relu, then relu_out into an existing array */
  CHECK(loom_relu(a, &r) == LOOM_OK);
  CHECK(loom_array_copy_to(r, out, sizeof out) == LOOM_OK);
  const float relu_want[6] = {0, 2, 0, 4, 0, 6};
  CHECK(close_to(out, relu_want, 6));
  CHECK(loom_neg_out(r, a) == LOOM_OK);
  CHECK(loom_array_copy_to(r, out, sizeof out) == LOOM_OK);
  const float neg_want[6] = {1, -2, 3, -4, 5, -6};
  CHECK(close_to(out, neg_want, 6));

  /* broadcasting add, an attribute (leaky_relu's alpha), int[] dims */
  LoomArray sum_ab = NULL, leaky = NULL;
  CHECK(loom_add(a, b, &sum_ab) == LOOM_OK);
  CHECK(loom_array_copy_to(sum_ab, out, sizeof out) == LOOM_OK);
  const float add_want[6] = {9, 22, 27, 14, 15, 36};
  CHECK(close_to(out, add_want, 6));
  CHECK(loom_leaky_relu(a, 0.5, &leaky) == LOOM_OK);
  CHECK(loom_array_copy_to(leaky, out, sizeof out) == LOOM_OK);
  const float leaky_want[6] = {-0.5f, 2, -1.5f, 4, -2.5f, 6};
  CHECK(close_to(out, leaky_want, 6));
  const int64_t dims[1] = {1};
  CHECK(loom_sum(a, dims, 1, 0, &s) == LOOM_OK);
  int ndim = -1;
  int64_t got_shape[4] = {0};
  LoomDType dtype;
  int64_t numel = 0;
  CHECK(loom_array_info(s, &ndim, got_shape, 4, &dtype, &numel) == LOOM_OK);
  CHECK(ndim == 1 && got_shape[0] == 2 && dtype == LOOM_FLOAT32 && numel == 2);
  CHECK(loom_array_copy_to(s, out, sizeof out) == LOOM_OK);
  const float sum_want[2] = {-2, 5};
  CHECK(close_to(out, sum_want, 2));

  /* matmul (2, 3) @ (3, 2) */
  LoomStatus st = loom_matmul(a, m, &p);
  if (st == LOOM_ERR_NOT_IMPLEMENTED) {
    printf("c_api_test: matmul not built (no BLAS): %s\n", loom_last_error());
  } else {
    CHECK(st == LOOM_OK);
    CHECK(loom_array_copy_to(p, out, sizeof out) == LOOM_OK);
    const float mm_want[4] = {-4, -1, 10, 1};
    CHECK(close_to(out, mm_want, 4));
    /* linear's bias is optional (Tensor?): NULL means none, a @ a^T */
    LoomArray lin = NULL;
    CHECK(loom_linear(a, a, NULL, &lin) == LOOM_OK);
    CHECK(loom_array_copy_to(lin, out, 4 * sizeof(float)) == LOOM_OK);
    const float lin_want[4] = {14, -32, -32, 77};
    CHECK(close_to(out, lin_want, 4));
    loom_array_free(lin);
  }

  /* topk: several outputs, one out-parameter each */
  LoomArray top_values = NULL, top_indices = NULL;
  CHECK(loom_topk(a, 1, -1, 1, &top_values, &top_indices) == LOOM_OK);
  CHECK(loom_array_copy_to(top_values, out, 2 * sizeof(float)) == LOOM_OK);
  const float top_want[2] = {2, 6};
  CHECK(close_to(out, top_want, 2));
  int64_t top_at[2] = {-1, -1};
  CHECK(loom_array_copy_to(top_indices, top_at, sizeof top_at) == LOOM_OK);
  CHECK(top_at[0] == 1 && top_at[1] == 2);
  loom_array_free(top_values);
  loom_array_free(top_indices);
  LoomArray untouched_top = NULL;
  CHECK(loom_topk(a, 4, -1, 1, &untouched_top, &top_indices) == LOOM_ERR_VALUE && untouched_top == NULL);
  CHECK(strstr(loom_last_error(), "topk: k must be in [0, 3]") != NULL);

  /* concat: a list of arrays as a pointer and a count */
  LoomArray joined = NULL;
  const LoomArray parts[2] = {a, a};
  CHECK(loom_concat(parts, 2, 0, &joined) == LOOM_OK);
  CHECK(loom_array_info(joined, &ndim, got_shape, 4, &dtype, &numel) == LOOM_OK);
  CHECK(ndim == 2 && got_shape[0] == 4 && got_shape[1] == 3 && numel == 12);
  float joined_out[12];
  CHECK(loom_array_copy_to(joined, joined_out, sizeof joined_out) == LOOM_OK);
  CHECK(close_to(joined_out, a_data, 6) && close_to(joined_out + 6, a_data, 6));
  LoomArray untouched_join = NULL;
  CHECK(loom_concat(parts, -1, 0, &untouched_join) == LOOM_ERR_VALUE && untouched_join == NULL);
  CHECK(strstr(loom_last_error(), "loom_concat: arrays must point to") != NULL);

  /* split: a list of outputs into caller-provided handles, as many as num_outputs */
  LoomArray columns[3] = {NULL, NULL, NULL};
  CHECK(loom_split(a, 3, 1, 1, columns, 3) == LOOM_OK);
  for (int k = 0; k < 3; ++k) {
    float column[2] = {0, 0};
    CHECK(loom_array_info(columns[k], &ndim, got_shape, 4, &dtype, &numel) == LOOM_OK);
    CHECK(ndim == 1 && got_shape[0] == 2 && numel == 2);
    CHECK(loom_array_copy_to(columns[k], column, sizeof column) == LOOM_OK);
    CHECK(column[0] == a_data[k] && column[1] == a_data[3 + k]);
    loom_array_free(columns[k]);
  }
  LoomArray untouched_parts[2] = {NULL, NULL};
  CHECK(loom_split(a, 3, 1, 0, untouched_parts, 2) == LOOM_ERR_VALUE && untouched_parts[0] == NULL);
  CHECK(strstr(loom_last_error(), "loom_split: num_results is 2, but the call gives 3") != NULL);
  CHECK(loom_split(a, 2, 1, 0, untouched_parts, 2) == LOOM_ERR_VALUE && untouched_parts[0] == NULL);
  CHECK(strstr(loom_last_error(), "split: axis 1 of shape (2, 3) has 3 elements") != NULL);

  /* errors: a status code, the out-parameter untouched, a message naming the op */
  const int64_t shape4[1] = {4};
  const float four[4] = {1, 2, 3, 4};
  CHECK(loom_array_from_data(four, shape4, 1, LOOM_FLOAT32, &bad) == LOOM_OK);
  LoomArray untouched = NULL;
  CHECK(loom_add(a, bad, &untouched) == LOOM_ERR_VALUE);
  CHECK(untouched == NULL);
  CHECK(strstr(loom_last_error(), "add: cannot broadcast") != NULL);
  CHECK(loom_relu(NULL, &untouched) == LOOM_ERR_VALUE);
  CHECK(strstr(loom_last_error(), "relu: x is a NULL LoomArray") != NULL);
  CHECK(loom_array_copy_to(a, out, 4) == LOOM_ERR_VALUE);
  CHECK(loom_array_from_data(a_data, shape23, 2, 42, &untouched) == LOOM_ERR_TYPE);

  /* kernel errors: with nothing pending a take runs inside the call, and its
   * bad index is the call's status; above a set in-place limit it is queued,
   * and the wait reports the error, with the op's message, and only once */
  enum { kBig = 1 << 20 };  /* read + written: above the limit set below */
  static float big_data[kBig];
  static int64_t big_index[kBig];
  big_index[kBig - 1] = kBig + 7;
  const int64_t big_shape[1] = {kBig};
  LoomArray big = NULL, big_idx = NULL, taken = NULL;
  CHECK(loom_array_from_data(big_data, big_shape, 1, LOOM_FLOAT32, &big) == LOOM_OK);
  CHECK(loom_array_from_data(big_index, big_shape, 1, LOOM_INT64, &big_idx) == LOOM_OK);
  int64_t limit = 0;
  CHECK(loom_set_inline_work_limit(-1, &limit) == LOOM_OK);
  CHECK(loom_take(big, big_idx, 0, &taken) == LOOM_ERR_INDEX && taken == NULL);
  CHECK(strstr(loom_last_error(), "take: index 1048583 is out of range") != NULL);
  CHECK(loom_set_inline_work_limit(kBig - 1, NULL) == LOOM_OK);
  CHECK(loom_take(big, big_idx, 0, &taken) == LOOM_OK);
  CHECK(loom_array_wait(taken) == LOOM_ERR_INDEX);
  CHECK(strstr(loom_last_error(), "take: index 1048583 is out of range") != NULL);
  CHECK(loom_wait_all() == LOOM_OK);
  CHECK(loom_array_wait(big) == LOOM_OK);
  CHECK(loom_set_inline_work_limit(limit, NULL) == LOOM_OK);

  /* autograd: d/dx sum(x * x) = 2x */
  LoomArray x = NULL, xx = NULL, total = NULL, g = NULL;
  int prev = -1;
  CHECK(loom_array_from_data(b_data, shape3, 1, LOOM_FLOAT32, &x) == LOOM_OK);
  CHECK(loom_attach_grad(x) == LOOM_OK);
  CHECK(loom_set_recording(1, &prev) == LOOM_OK && prev == 0);
  CHECK(loom_mul(x, x, &xx) == LOOM_OK);
  CHECK(loom_sum(xx, NULL, -1, 0, &total) == LOOM_OK);
  CHECK(loom_set_recording(0, NULL) == LOOM_OK);
  CHECK(loom_backward(total) == LOOM_OK);
  CHECK(loom_array_grad(x, &g) == LOOM_OK && g != NULL);
  CHECK(loom_array_copy_to(g, out, sizeof out) == LOOM_OK);
  const float grad_want[3] = {20, 40, 60};
  CHECK(close_to(out, grad_want, 3));

  LoomArray all[] = {a, b, m, r, s, p, bad, sum_ab, leaky, x, xx, total, g, joined, big, big_idx, taken};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) loom_array_free(all[i]);
  loom_array_free(NULL);
  if (failures == 0) printf("c_api_test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
