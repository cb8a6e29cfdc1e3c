"""Elementwise fusion on the GPU (runtime/graph/fuse_pointwise_cuda.h): a fused
group's CUDA source is built from its members' registered functors, compiled
by NVRTC, cached by signature and launched.

NVRTC needs no GPU, so the source of every fusable op compiles here on any
CUDA build; the element function of real traced groups (their members,
arguments, attributes and input values as the trace found them) is built
for the host with the system compiler and checked against the CPU's fused
and unfused results. Only the launch itself needs a GPU (the last tests)."""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import loom as lm
from loom.cached_op import CachedOp

G = lm._C.graph
ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(17)
needs_nvrtc = pytest.mark.skipif(not G.nvrtc_available(), reason="this build has no NVRTC (configure: CUDA toolkit)")
needs_gpu = pytest.mark.skipif(lm.num_gpus() == 0 or not G.fused_cuda_available(),
                               reason="needs a GPU and a CUDA build with NVRTC")


def fusable_ops():
    return sorted(s["name"] for s in G.schemas() if G.fusion_source(s["name"]) is not None)


ATTR_SAMPLE = {"f": 0.25, "i": 2.0, "b": 1.0}


def chain_of_every_op():
    """One group that runs every fusable op in turn, each reading the previous
    member and, for its other arguments, inputs 0 and 1 (attributes: samples)."""
    ops, refs, attrs = [], [], []
    for op in fusable_ops():
        src = G.fusion_source(op)
        prev = [-len(ops)] if ops else [0]
        refs.append(prev + [0, 1][: src["arity"] - 1])
        attrs.append([ATTR_SAMPLE[t] for t in src["attr_types"]])
        ops.append(op)
    return ops, refs, attrs


def traced_groups(fn, *inputs):
    """The fused groups of fn's traced program, each with the arrays its
    inputs are (the program's variables: fn's inputs, then its constants)."""
    op = CachedOp(fn, "fused")
    out = op(list(inputs))
    entry = op.entry(list(inputs), {})
    variables = list(inputs) + [entry.constants[name] for name in entry.constants]
    groups = entry.program.fused_groups
    for g in groups:
        g["values"] = [variables[v].asnumpy() for v in g["external"]]
    return groups, out


def test_fusable_pointwise_ops_register_their_functor_source():
    ops = fusable_ops()
    assert {"add", "mul", "sub", "div", "relu", "exp", "tanh", "sigmoid", "neg", "gelu", "leaky_relu",
            "clip"} <= set(ops)
    schemas = {s["name"]: s for s in G.schemas()}
    for op in ops:
        src = G.fusion_source(op)
        arrays = [a for a in schemas[op]["args"] if a["kind"] == "Tensor"]
        assert src["arity"] == len(arrays), op
        assert f"struct {src['functor']} {{" in src["text"] and "#line" in src["text"], op
        attrs = [a for a in schemas[op]["args"] if a["kind"] not in ("Tensor", "Tensor?")]
        assert len(src["attr_types"]) == len(attrs), op
    assert G.fusion_source("gelu")["attr_types"] == "b" and G.fusion_source("clip")["attr_types"] == "ff"
    # reductions and impl kernels do not fuse
    assert G.fusion_source("sum") is None and G.fusion_source("softmax") is None


def test_the_embedded_header_is_the_source_tree_one():
    assert G.pointwise_math_source() == (ROOT / "runtime/kernels/pointwise_math.h").read_text()


def test_the_source_names_each_member_and_reads_single_values_once():
    source, signature, _ = G.fused_kernel_source(["mul", "add", "relu"], [[0, 1], [-1, 0], [-2]],
                                                 [False, True], "float64")
    assert signature == "f64:mul(x0,x1);add(m0,x0);relu(m1)|s01"
    assert "typedef double T;" in source
    assert "const T x1 = T(in1[0]);" in source and "const T x0 = T(in0[i]);" in source
    assert "::loom::kernels::MulFunctor{}(x0, x1);  // mul" in source
    assert "::loom::kernels::AddFunctor{}(m0, x0);  // add" in source
    assert 'extern "C" __global__ void loom_fused(' in source
    # after the functors, lines are the source's own again (errors point into it, not opdefs/)
    lines = source.splitlines()
    directive = next(i for i, l in enumerate(lines) if l.startswith('#line') and "loom_fused.cu" in l)
    assert int(lines[directive].split()[1]) == directive + 2


def test_numeric_attributes_are_kernel_arguments_and_bools_are_literals():
    ops, refs = ["leaky_relu", "clip", "gelu"], [[0], [-1], [-2]]
    source, signature, values = G.fused_kernel_source(ops, refs, [False], "float32",
                                                      [[0.01], [-float("inf"), 6.0], [1.0]])
    assert signature == "f32:leaky_relu[a0](x0);clip[a1,a2](m0);gelu[true](m1)|s0"
    assert values == [0.01, -float("inf"), 6.0]
    assert "double v[3];" in source and "LeakyReluFunctor{attrs.v[0]}(x0)" in source
    assert "ClipFunctor{attrs.v[1], attrs.v[2]}(m0)" in source and "GeluFunctor{true}(m1)" in source
    # another slope is the same kernel; the other gelu is not
    assert G.fused_kernel_source(ops, refs, [False], "float32", [[0.2], [0.0, 1.0], [1.0]])[1] == signature
    assert G.fused_kernel_source(ops, refs, [False], "float32", [[0.2], [0.0, 1.0], [0.0]])[1] != signature
    with pytest.raises(ValueError, match="has 1 attributes, given 0"):
        G.fused_kernel_source(["leaky_relu"], [[0]], [False], "float32", [[]])


@pytest.mark.parametrize("ops, refs, scalar, message", [
    (["mul", "softmax"], [[0, 1], [-1]], [False, False], "softmax' has no fusion source"),
    (["mul"], [[0]], [False], "takes 2 arrays, given 1"),
    (["mul", "relu"], [[0, 1], [-2]], [False, False], "reads m1, which is not an earlier member"),
    (["mul"], [[0, 2]], [False, False], "reads x2, which is not an input"),
    (["relu"], [], [False], "1 ops with 0 argument lists"),
])
def test_malformed_specs_are_value_errors_naming_the_problem(ops, refs, scalar, message):
    with pytest.raises(ValueError, match=message):
        G.fused_kernel_source(ops, refs, scalar, "float32")
    with pytest.raises(ValueError, match="expected float32, float64, float16 or bfloat16"):
        G.fused_kernel_source(["relu"], [[0]], [False], "int32")


@needs_nvrtc
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_every_fusable_op_compiles_with_nvrtc_for_each_built_architecture(dtype):
    ops, refs, attrs = chain_of_every_op()
    source, _, _ = G.fused_kernel_source(ops, refs, [False, True], dtype, attrs)
    archs = G.nvrtc_supported_archs()
    for arch in (80, 90):
        code, is_ptx, log = G.nvrtc_compile(source, arch)
        assert not is_ptx and code[:4] == b"\x7fELF", (arch, log)  # a CUBIN
    # A GPU newer than NVRTC knows gets PTX of the newest it does.
    code, is_ptx, _ = G.nvrtc_compile(source, archs[-1] + 1)
    assert is_ptx and f".target sm_{archs[-1]}".encode() in code and b".entry loom_fused(" in code


@needs_nvrtc
def test_a_compile_error_names_the_yaml_line_and_the_way_out():
    source, _, _ = G.fused_kernel_source(["relu"], [[0]], [False], "float32")
    broken = source.replace("::loom::pw::where(", "::loom::pw::no_such_function(")
    with pytest.raises(RuntimeError, match=r"(?s)opdefs/elementwise/relu\.yaml\(11\).*LOOM_GRAPH_FUSION=0"):
        G.nvrtc_compile(broken, 90)
    with pytest.raises(ValueError, match="older than the oldest"):
        G.nvrtc_compile(source, 10)


def host_element_run(source, inputs, attr_values, n, dtype, tmp_path, grad=None, gradients=0):
    """Builds the source's element function for the host and runs it over n
    elements: what each GPU thread computes, minus the launch (for float16
    inputs, the float result before the store rounds it). A backward
    kernel's (grad: the incoming gradient) returns its `gradients` outputs,
    one row each."""
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if cxx is None:
        pytest.skip("no host C++ compiler")
    ctype = "double" if dtype == np.float64 else "float"
    stype = "::loom::f16" if dtype == np.float16 else ctype
    (tmp_path / "fused.h").write_text(source)
    arrays = list(inputs) + ([] if grad is None else [grad])
    reads = "".join(f"  std::vector<S> in{k}({a.size}); std::fread(in{k}.data(), sizeof(S), {a.size}, f);\n"
                    for k, a in enumerate(arrays))
    args = "".join(f"in{k}.data(), " for k in range(len(arrays)))
    attrs = ", ".join(repr(float(v)).replace("inf", "INFINITY") for v in attr_values) or "0.0"
    if grad is None:
        outs, rows = f"  std::vector<T> out({n});\n", 1
        loop = f"out[i] = loom_fused_kernel::loom_fused_at({args}attrs, i);"
    else:
        outs, rows = f"  std::vector<S> out({gradients} * {n});\n", gradients
        gins = "".join(f"out.data() + {j} * {n}, " for j in range(gradients))
        loop = f"loom_fused_kernel::loom_fused_backward_at({args}{gins}attrs, i);"
    (tmp_path / "main.cc").write_text(
        '#include "fused.h"\n#include <cmath>\n#include <cstdio>\n#include <vector>\n'
        f"using T = {ctype};\nusing S = {stype};\n"
        "int main(int, char** argv) {\n  std::FILE* f = std::fopen(argv[1], \"rb\");\n" + reads + outs +
        f"  const loom_fused_kernel::Attrs attrs{{{{{attrs}}}}};\n"
        f"  for (long long i = 0; i < {n}; ++i) {loop}\n"
        "  std::FILE* g = std::fopen(argv[2], \"wb\");\n"
        f"  std::fwrite(out.data(), sizeof(out[0]), out.size(), g);\n  std::fclose(g);\n}}\n")
    with open(tmp_path / "in.bin", "wb") as f:
        for a in arrays:
            f.write(np.ascontiguousarray(a, dtype=dtype).tobytes())
    subprocess.run([cxx, "-std=c++20", "-O1", f"-I{ROOT}", "-I", str(tmp_path), "-o", str(tmp_path / "fused"),
                    str(tmp_path / "main.cc")], check=True, capture_output=True, text=True)
    subprocess.run([str(tmp_path / "fused"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
    got = np.fromfile(tmp_path / "out.bin", dtype=np.float32 if dtype == np.float16 and grad is None else dtype)
    return got if grad is None else got.reshape(rows, n)


CASES = {
    "mul_add_relu": (lambda a, b: lm.nd.relu(a * b + a), ["mul", "add", "relu"], 2),
    # Python numbers are single-value inputs
    "scalars_and_transcendentals": (lambda a: lm.nd.tanh(lm.nd.exp(a * 0.5) - 1.0) / 2 + lm.nd.sigmoid(a),
                                    ["mul", "exp", "sub", "tanh", "div", "sigmoid", "add"], 1),
    # attributes: gelu's bool (both values), leaky_relu's and clip's floats
    "attributes": (lambda a, b: lm.nd.clip(lm.nd.gelu(a * b, approximate=True) + lm.nd.gelu(b), -0.5, 0.75)
                   + lm.nd.leaky_relu(a, 0.1),
                   ["mul", "gelu", "gelu", "add", "clip", "leaky_relu", "add"], 2),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_a_traced_groups_source_computes_what_the_cpu_does(case, dtype, tmp_path):
    """The group exactly as the trace found it (its members, their arguments
    and attributes, the values it reads) becomes CUDA source whose element
    function, built for the host, matches the CPU's fused and unfused runs."""
    fn, ops, arrays = CASES[case]
    n = 1000
    inputs = [lm.nd.array(RNG.standard_normal(n).astype(dtype)) for _ in range(arrays)]
    groups, fused_cpu = traced_groups(fn, *inputs)
    assert len(groups) == 1 and sorted(groups[0]["ops"]) == sorted(ops)
    g = groups[0]
    source, _, values = G.fused_kernel_source(g["ops"], g["refs"], [v.size == 1 for v in g["values"]],
                                              np.dtype(dtype).name, g["attrs"])
    got = host_element_run(source, g["values"], values, n, dtype, tmp_path)
    if dtype == np.float16:
        # float members over the widened inputs: the float32 chain, rounded
        # to float16 only at the store (the CPU's fused tiles do the same)
        wide = [a.astype("float32") for a in inputs]
        np.testing.assert_allclose(got, fn(*wide).asnumpy(), rtol=2e-6, atol=1e-7)
        # (the host build and the CPU tiles may contract a functor's own
        # multiply-adds differently: a float rounding apart, then at most
        # one float16 unit after the store)
        np.testing.assert_allclose(got.astype(np.float16).astype(np.float32),
                                   fused_cpu.asnumpy().astype(np.float32), rtol=2 ** -10, atol=2 ** -24)
        return
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(got, fn(*inputs).asnumpy(), **tol)
    np.testing.assert_allclose(got, fused_cpu.asnumpy(), **tol)


@needs_nvrtc
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_every_fusable_ops_gradient_compiles_with_nvrtc(dtype):
    """One backward kernel through every fusable op: each gradient source
    (the functor the op's first-order backward runs) compiles with NVRTC."""
    ops, refs, attrs = chain_of_every_op()
    with_grads = [op for op in ops if any(G.fusion_grad_source(op, k) for k in range(G.fusion_source(op)["arity"]))]
    assert {"mul", "relu", "gelu", "clip", "where"} <= set(with_grads)
    source, signature, _, outputs = G.fused_backward_kernel_source(ops, refs, [False, False], [True, True], dtype,
                                                                   attrs)
    assert signature.endswith("|s00|g11") and outputs == [0, 1]
    assert "loom_fused_backward(" in source and "gin1[i] = S(gx1);" in source
    for op in with_grads:
        assert G.fusion_grad_source(op, 0) is None or G.fusion_grad_source(op, 0)["functor"] in source
    code, _, log = G.nvrtc_compile(source, 90)
    assert len(code) > 0, log


def test_a_backward_kernel_writes_only_the_gradients_a_formula_reaches():
    # floor takes no gradient: relu(floor(x0) * x1) reaches x1 only
    source, _, _, outputs = G.fused_backward_kernel_source(["floor", "mul", "relu"], [[0], [-1, 1], [-2]],
                                                           [False, False], [True, True])
    assert outputs == [1] and "gin1" in source and "gin0" not in source
    # add's formulas read only the gradient: in exp(x0) + x1 the walk recomputes
    # exp (its formula reads its result) but neither reads x1 nor computes the add
    source, _, _, outputs = G.fused_backward_kernel_source(["exp", "add"], [[0], [-1, 1]], [False, False],
                                                           [True, False])
    assert outputs == [0] and "const T m0" in source
    assert "const T m1" not in source and "const T x1" not in source
    with pytest.raises(ValueError, match="wants_grad"):
        G.fused_backward_kernel_source(["relu"], [[0]], [False], [])
    with pytest.raises(ValueError, match="2 wanted-gradient flags for 1 inputs"):
        G.fused_backward_kernel_source(["relu"], [[0]], [False], [True, True])


def recorded_cpu_gradients(fn, inputs, head):
    for a in inputs:
        a.attach_grad()
    op = CachedOp(fn, "fused grad")
    with lm.autograd.record():
        out = op(list(inputs))
    assert out._grad_fn.startswith("FusedPointwiseBackward")
    out.backward(head)
    return [a.grad.asnumpy() for a in inputs]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_traced_groups_backward_source_computes_what_the_cpu_does(case, dtype, tmp_path):
    """The backward kernel of a traced group, its element function built for
    the host, gives the CPU's fused backward's gradients (one rounding
    apart where a compiler contracts a multiply-add)."""
    fn, ops, arrays = CASES[case]
    n = 1000
    inputs = [lm.nd.array(RNG.standard_normal(n).astype(dtype)) for _ in range(arrays)]
    groups, _ = traced_groups(fn, *inputs)
    g = groups[0]
    wanted = [v.size > 1 for v in g["values"]]  # the arrays; Python numbers take no gradient
    source, _, values, outputs = G.fused_backward_kernel_source(g["ops"], g["refs"], [v.size == 1 for v in g["values"]],
                                                                wanted, np.dtype(dtype).name, g["attrs"])
    assert len(outputs) == arrays
    head = RNG.standard_normal(n).astype(dtype)
    got = host_element_run(source, g["values"], values, n, dtype, tmp_path, grad=head, gradients=len(outputs))
    want = recorded_cpu_gradients(fn, inputs, lm.nd.array(head))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    for row, k in enumerate(outputs):
        # the group's inputs in its own order: find which of fn's inputs input k is
        which = next(j for j, a in enumerate(inputs) if np.array_equal(a.asnumpy(), g["values"][k]))
        np.testing.assert_allclose(got[row], want[which], **tol)


# ---------------------------------------------------------------- on a GPU

def fused_on(ctx, fn, *arrays):
    op = CachedOp(fn, "fused")
    inputs = [lm.nd.array(a, ctx=ctx) for a in arrays]
    out = op(inputs)
    return out.asnumpy(), op.entry(inputs, {}).program.num_fused_groups


@needs_gpu
@pytest.mark.parametrize("n", [1, 7, 4096, 100_003, 1 << 22])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_fused_gpu_chain_equals_the_cpu(n, dtype):
    a, b = RNG.standard_normal(n).astype(dtype), RNG.standard_normal(n).astype(dtype)
    fn = lambda a, b: lm.nd.relu(a * b + a)  # noqa: E731
    before = G.fused_cuda_cache_size()
    got, groups = fused_on(lm.gpu(0), fn, a, b)
    want, _ = fused_on(lm.cpu(), fn, a, b)
    assert groups == 1
    assert G.fused_cuda_cache_size() <= before + 1 and G.fused_cuda_cache_size() >= 1  # it ran fused
    assert G.fused_cuda_failure_count() == 0
    # NVRTC contracts a*b + a into one fused multiply-add (one rounding where
    # the CPU's tiles round twice): the two may differ by the rounding of
    # a*b and of the sum, a unit in the last place of each at most.
    eps = np.finfo(dtype).eps
    bound = eps * (np.abs(a * b) + np.abs(want) + np.abs(got)) + np.finfo(dtype).tiny
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) / bound)


@needs_gpu
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_gpu_groups_compile_once_per_signature_and_match_the_cpu(case):
    fn, _, arrays = CASES[case]
    xs = [RNG.standard_normal((64, 333)).astype(np.float64) for _ in range(arrays)]
    before, failures = G.fused_cuda_cache_size(), G.fused_cuda_failure_count()
    got, groups = fused_on(lm.gpu(0), fn, *xs)
    compiled = G.fused_cuda_cache_size()
    # this group's kernel: new here, or built already by another test of this
    # process with the same signature (relu(a*b + a) in float64); never a
    # failed compile quietly running unfused
    assert groups == 1 and compiled >= 1 and compiled - before in (0, 1)
    assert G.fused_cuda_failure_count() == failures == 0
    again, _ = fused_on(lm.gpu(0), fn, *xs)        # a second program, the same signature
    assert G.fused_cuda_cache_size() == compiled
    want, _ = fused_on(lm.cpu(), fn, *xs)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(again, got)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_fused_gpu_half_chain_computes_in_float_like_the_cpu(dtype):
    n = 100_003
    arrays = [RNG.standard_normal(n).astype(np.float32) for _ in range(2)]
    fn = lambda a, b: lm.nd.relu(a * b + a) * 0.75 - lm.nd.sigmoid(b)  # noqa: E731
    results = []
    for ctx in (lm.gpu(0), lm.cpu()):
        inputs = [lm.nd.array(a, ctx=ctx).astype(dtype) for a in arrays]
        op = CachedOp(fn, "fused")
        out = op(inputs)
        assert out.dtype == dtype and op.entry(inputs, {}).program.num_fused_groups == 1
        results.append(out.astype("float32").asnumpy())
    assert G.fused_cuda_failure_count() == 0
    # both round once from float; NVRTC's contractions may move the float
    # result by an ulp, so the stored values may differ by one half unit
    unit = 2 ** -7 if dtype == "bfloat16" else 2 ** -10
    np.testing.assert_allclose(results[0], results[1], rtol=unit, atol=unit * 2 ** -14)


@needs_gpu
def test_another_attribute_value_reuses_the_kernel_and_fallbacks_stay_correct():
    x = RNG.standard_normal((64, 33)).astype(np.float32)
    fused_on(lm.gpu(0), lambda x: lm.nd.leaky_relu(x * 2.0, 0.1), x)
    compiled = G.fused_cuda_cache_size()
    got, _ = fused_on(lm.gpu(0), lambda x: lm.nd.leaky_relu(x * 2.0, 0.3), x)
    assert G.fused_cuda_cache_size() == compiled
    np.testing.assert_allclose(got, np.where(x > 0, 2 * x, 0.6 * x), rtol=1e-6)
    bias = RNG.standard_normal(33).astype(np.float32)  # broadcasting: runs unfused
    got, _ = fused_on(lm.gpu(0), lambda x, b: lm.nd.relu(x + b) * 2, x, bias)
    np.testing.assert_allclose(got, np.maximum(x + bias, 0) * 2, rtol=1e-6)


@needs_gpu
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_a_recorded_gpu_group_runs_a_fused_backward_like_the_cpu(case, dtype):
    # float16: computed in float and rounded once per gradient, against the
    # CPU's float32 gradients of the same values
    fn, _, arrays = CASES[case]
    n = 100_003
    values = [RNG.standard_normal(n).astype(dtype) for _ in range(arrays)]
    head = RNG.standard_normal(n).astype(dtype)
    wide = np.float32 if dtype == np.float16 else dtype
    want = recorded_cpu_gradients(fn, [lm.nd.array(v.astype(wide)) for v in values], lm.nd.array(head.astype(wide)))
    inputs = [lm.nd.array(v, ctx=lm.gpu(0)) for v in values]
    for a in inputs:
        a.attach_grad()
    op = CachedOp(fn, "fused grad gpu")
    with lm.autograd.record():
        out = op(inputs)
    assert out._grad_fn.startswith("FusedPointwiseBackward")
    out.backward(lm.nd.array(head, ctx=lm.gpu(0)))
    if dtype == np.float32:
        # A float32 gradient through gelu's tanh or erf loses digits to
        # cancellation: the CPU's is up to 1.2e-5 from float64's, and the
        # GPU's (other libm, other contractions) lands as far on the other
        # side. So both are measured against float64, and the GPU may err at
        # most a few times as much as the CPU does on the same values.
        exact = recorded_cpu_gradients(fn, [lm.nd.array(v.astype(np.float64)) for v in values],
                                       lm.nd.array(head.astype(np.float64)))
        for a, cpu32, w in zip(inputs, want, exact):
            got = a.grad.asnumpy()
            gpu_error, cpu_error = (float(np.abs(g - w).max()) for g in (got, cpu32))
            assert gpu_error <= 4 * cpu_error + 1e-6, (case, gpu_error, cpu_error)
            # and element by element, near the CPU's (the H200: 1.4e-5 at most)
            np.testing.assert_allclose(got, cpu32, rtol=1e-4, atol=2e-5)
        return
    tol = {np.float64: dict(rtol=1e-13, atol=1e-14), np.float16: dict(rtol=2e-3, atol=2e-3)}[dtype]
    for a, w in zip(inputs, want):
        np.testing.assert_allclose(a.grad.asnumpy().astype(wide), w, **tol)
