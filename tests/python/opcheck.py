"""The checks every generated per-op suite (generated/tests/test_<op>.py)
runs, driven by the op's YAML test hints. Independent reference: the NumPy
expression in `tests.ref`."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loom as lm

DEFAULT_TOL = {"float32": dict(rtol=1e-6, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-12)}


class Indices(np.ndarray):
    """The values of an index argument (`index: true` in the YAML): always
    passed to loom as int64, whatever dtype the check is running."""


def _nd(a, dtype, **kwargs):
    """`a` as an NDArray of `dtype`, or of int64 when it holds indices (None,
    an optional argument not given, stays None)."""
    if a is None:
        return None
    if isinstance(a, Indices):
        return lm.nd.array(np.asarray(a), dtype="int64", **kwargs)
    return lm.nd.array(a, dtype=dtype, **kwargs)


@dataclass
class _Case:
    """What every generated suite states about its op (built from the YAML)."""
    name: str
    inputs: list
    attrs: dict
    kernel_dtypes: list
    declared_dtypes: list
    ref: object
    domain: dict
    tol: dict
    has_out: bool
    diff_inputs: list
    gradcheck: dict
    half_dtypes: list = field(default_factory=list, kw_only=True)  # float16/bfloat16 kernels (float32 math)
    mutated: tuple = field(default=(), kw_only=True)  # arrays an impl op's kernel writes in place (`mutates`)

    @property
    def fn(self):
        return getattr(lm.nd, self.name)

    # A list op (a Tensor[] argument, e.g. concat) takes its arrays as one
    # list; every check passes them as separate positional arrays.
    list_input = False

    def call(self, *arrays, **attrs):
        if self.mutated:
            arrays = self._own_mutated(arrays)
        if self.list_input:
            return self.fn(list(arrays), **attrs)
        # by name: an op may put an attribute between its arrays (index_select(x, dim, index))
        return self.fn(**dict(zip(self.inputs, arrays)), **attrs)

    def _own_mutated(self, arrays):
        """Each mutated array as a fresh dense copy in the kernels' compute
        dtype (float32 for float16/bfloat16 inputs), as the op requires:
        the checks' views and dtype sweeps apply to the op's other inputs,
        and no check sees another's writes."""
        first = arrays[0]
        compute = "float64" if getattr(first, "dtype", None) == "float64" else "float32"
        out = list(arrays)
        for i, name in enumerate(self.inputs):
            if name in self.mutated and i < len(out) and out[i] is not None:
                value = out[i]
                if hasattr(value, "asnumpy"):
                    value = value if value.dtype in ("float32", "float64") else value.astype("float32")
                host = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
                out[i] = lm.nd.array(np.ascontiguousarray(host), dtype=compute, ctx=getattr(value, "device", None))
        return tuple(out)

    def reference(self, *arrays, **attrs):
        return self.ref(list(arrays), **attrs) if self.list_input else self.ref(**dict(zip(self.inputs, arrays)),
                                                                                 **attrs)

    def differentiable(self, values) -> tuple[list[int], list[str]]:
        """Positions and names of the differentiable arrays among the
        positional `values` (an optional argument given as None has none)."""
        if self.list_input:
            return list(range(len(values))), [f"{self.inputs[0]}[{i}]" for i in range(len(values))]
        wrt = [self.inputs.index(n) for n in self.diff_inputs]
        return [i for i in wrt if values[i] is not None], list(self.inputs)


@dataclass
class OpCase(_Case):
    shape_rule: str
    dtype_rule: str
    inplace: str | None = None   # the input op_ overwrites

    def result_dtype(self, dtype: str) -> str:
        """The result's dtype for inputs of `dtype` (comparisons yield bool)."""
        return "bool" if self.dtype_rule == "bool" else dtype


def _values(draw, shape, dtype, domain):
    low, high = (domain or {}).get("low", -3), (domain or {}).get("high", 3)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(int(low) - 5, info.min), min(int(high) + 5, info.max) + 1, size=shape).astype(dtype)
    x = rng.uniform(low, high, size=shape).astype(dtype)
    # Keep samples off kinks (e.g. relu at 0), as the YAML asks.
    for point in (domain or {}).get("away_from", []):
        margin = (domain or {}).get("margin", 1e-3)
        near = np.abs(x - point) < margin
        x[near] = point + margin * 2
    return x


@st.composite
def _inputs(draw, case: OpCase, dtype: str):
    n = len(case.inputs)
    if case.shape_rule == "broadcast":
        shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4,
                                                        min_side=0, max_side=5)).input_shapes
    else:
        shapes = [draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))] * n
    return [_values(draw, s, dtype, case.domain.get(name)) for s, name in zip(shapes, case.inputs)]


def _tolerance(case: OpCase, dtype: str) -> dict:
    return case.tol.get(dtype) or DEFAULT_TOL.get(dtype, dict(rtol=0, atol=0))


def check_forward(case: OpCase, dtype: str):
    """Random shapes (0-d, zero-size and broadcast included) and values:
    loom's result equals the NumPy reference, with the expected dtype."""

    @settings()  # the active profile (conftest.py): ci or thorough
    @given(_inputs(case, dtype))
    def run(arrays):
        got = case.fn(*[lm.nd.array(a, dtype=dtype) for a in arrays], **case.attrs).asnumpy()
        want = np.asarray(case.ref(*arrays, **case.attrs))
        assert got.shape == want.shape
        result = case.result_dtype(dtype)
        assert got.dtype == np.dtype(result), f"{case.name}: result dtype {got.dtype}, expected {result}"
        np.testing.assert_allclose(got, want.astype(result), **_tolerance(case, dtype))

    run()


def check_out_variant(case: OpCase):
    """out= writes the same values into the given array and returns it."""
    dtype = case.kernel_dtypes[0]
    arrays = [_values(lambda s: 7, (3, 4), dtype, case.domain.get(n)) for n in case.inputs]
    args = [lm.nd.array(a, dtype=dtype) for a in arrays]
    if not case.has_out:
        with pytest.raises(TypeError):
            case.fn(*args, out=lm.nd.zeros((3, 4), dtype=dtype))
        return
    result = case.result_dtype(dtype)
    out = lm.nd.zeros((3, 4), dtype=result)
    case.fn(*args, out=out, **case.attrs)
    np.testing.assert_allclose(out.asnumpy(), case.fn(*args, **case.attrs).asnumpy())
    with pytest.raises(lm.LoomError, match=case.name):
        case.fn(*args, out=lm.nd.zeros((4, 3), dtype=result), **case.attrs)
    if result != dtype:  # an out= of the input dtype is the wrong type
        with pytest.raises(TypeError, match=f"{case.name}: out= has dtype {dtype}"):
            case.fn(*args, out=lm.nd.zeros((3, 4), dtype=dtype), **case.attrs)


def check_rejects_dtype(case: OpCase):
    """A dtype the YAML does not declare raises a TypeError naming the op."""
    missing = [d for d in ("uint8", "int8", "bool", "int32", "float64") if d not in case.declared_dtypes]
    if all(n in getattr(case, "index_inputs", []) for n in case.inputs):
        pytest.skip(f"{case.name} takes only indices, which may have any integer dtype")
    if not missing:
        pytest.skip(f"{case.name} declares every dtype NumPy arrays can carry here")
    args = [lm.nd.array(np.ones(3, dtype=missing[0])) for _ in case.inputs]
    with pytest.raises(TypeError, match=f"{case.name}: no kernel for dtype {missing[0]}"):
        case.call(*args, **case.attrs)


def check_noncontiguous(case: OpCase):
    """Transposed (strided) inputs, and a transposed out=, give the same
    values as the NumPy reference."""
    for dtype in case.kernel_dtypes:
        arrays = [_values(lambda s, i=i: 11 + i, (4, 5), dtype, case.domain.get(n))
                  for i, n in enumerate(case.inputs)]
        # lm.nd.array(a.T).T is a (4, 5) view with strides (1, 4).
        views = [lm.nd.array(np.ascontiguousarray(a.T)).T for a in arrays]
        assert not views[0].is_contiguous()
        want = np.asarray(case.ref(*arrays, **case.attrs)).astype(case.result_dtype(dtype))
        np.testing.assert_allclose(case.fn(*views, **case.attrs).asnumpy(), want, **_tolerance(case, dtype))
        if case.has_out:
            out = lm.nd.zeros((5, 4), dtype=case.result_dtype(dtype)).T
            case.fn(*views, out=out, **case.attrs)
            np.testing.assert_allclose(out.asnumpy(), want, **_tolerance(case, dtype))


def check_inplace(case: OpCase):
    """op_ overwrites its input with the out-of-place result (same storage,
    version bumped), broadcasting the other operands. While recording, op_ on
    a non-leaf rebases its history: gradients equal the out-of-place op's; on
    a leaf that requires grad, or on an array outside autograd while another
    input requires grad, it raises naming the op; under pause() it runs."""
    target = case.inputs.index(case.inplace)
    inplace = getattr(lm.nd, case.name + "_")
    for dtype in [d for d in case.kernel_dtypes if d in ("float32", "float64")][:1] or case.kernel_dtypes[:1]:
        shapes = [(3, 4) if i == target else (4,) for i in range(len(case.inputs))]
        arrays = [_values(lambda s, i=i: 21 + i, shp, dtype, case.domain.get(n))
                  for i, (shp, n) in enumerate(zip(shapes, case.inputs))]
        args = [lm.nd.array(a, dtype=dtype) for a in arrays]
        want = case.fn(*args, **case.attrs).asnumpy()
        before = args[target]._version
        inplace(*args, **case.attrs)
        assert args[target]._version > before
        np.testing.assert_allclose(args[target].asnumpy(), want, **_tolerance(case, dtype))
        if dtype not in ("float32", "float64") or case.inplace not in case.diff_inputs:
            continue
        fresh = [lm.nd.array(a, dtype=dtype) for a in arrays]
        fresh[target].attach_grad()
        with lm.autograd.record():
            with pytest.raises(ValueError, match=f"{case.name}_: .* is a leaf that requires grad"):
                inplace(*fresh, **case.attrs)
            with lm.autograd.pause():
                inplace(*fresh, **case.attrs)
        _check_inplace_gradient(case, inplace, arrays, target)


def _call_by_name(case, fn, args):
    """fn(*args) with the arrays passed by name: an impl op may put an
    attribute between its arrays (index_select(x, dim, index))."""
    return fn(**dict(zip(case.inputs, args)), **case.attrs)


def _check_inplace_gradient(case, inplace, arrays, target: int):
    """Gradients through op_ on a non-leaf equal the out-of-place op's; op_
    on an array outside autograd, with another input requiring grad, raises."""
    by_name = partial(_call_by_name, case)
    grads, weights = {}, None
    for mode in ("out-of-place", "in-place"):
        leaves = [_nd(a, "float64") for a in arrays]
        diff = [i for i, n in enumerate(case.inputs) if n in case.diff_inputs]
        for i in diff:
            leaves[i].attach_grad()
        with lm.autograd.record():
            args = list(leaves)
            args[target] = leaves[target] * 1.0  # a non-leaf, whose history the in-place op rebases
            # in place: a new handle on args[target]'s memory and history
            result = by_name(inplace if mode == "in-place" else case.fn, args)
            if weights is None:
                weights = np.random.default_rng(3).standard_normal(result.shape)
            loss = (result * lm.nd.array(weights)).sum()
        loss.backward()
        grads[mode] = [leaves[i].grad.asnumpy() for i in diff]
    for want, got in zip(grads["out-of-place"], grads["in-place"]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"{case.name}_ gradient")
    # an array outside autograd cannot take a differentiable result in place
    others = [i for i, n in enumerate(case.inputs) if n in case.diff_inputs and i != target]
    if others:
        plain = [_nd(a, "float64") for a in arrays]
        plain[others[0]].attach_grad()
        with lm.autograd.record():
            with pytest.raises(ValueError, match=f"{case.name}_: .* takes no part in autograd"):
                by_name(inplace, plain)


# ------------------------------------------------------------------ hand-written kernels

@dataclass
class ImplCase(_Case):
    """An op with kernel.impl: shapes come from the YAML's tests.shapes."""
    shapes: list
    dtype_rule: str = "promote"
    list_input: bool = False
    index_inputs: list = field(default_factory=list)
    # per case (parallel to shapes): attribute values of that case over
    # `attrs` (tests.shapes entries written {shapes: ..., attrs: ...})
    case_attrs: list = field(default_factory=list)
    inplace: str | None = None   # the input op_ overwrites (YAML `inplace`)

    def __post_init__(self):
        self.base_attrs = dict(self.attrs)

    def result_dtype(self, dtype: str) -> str:
        if self.dtype_rule.startswith("attr:"):  # a conversion (cast): the attribute names it
            return str(self.attrs[self.dtype_rule.split(":", 1)[1]])
        return {"int64": "int64", "float32": "float32"}.get(self.dtype_rule, dtype)

    def arrays(self, dtype, seed=0):
        """Yields (shapes, arrays) per tests.shapes case; while a case is
        out, `attrs` holds that case's attribute values, so every check
        written as `case.call(*arrays, **case.attrs)` runs it as declared
        (read them at once: the next case replaces them)."""
        for i, shapes in enumerate(self.shapes):
            self.attrs = dict(self.base_attrs, **(self.case_attrs[i] if self.case_attrs else {}))
            names = [self.inputs[0]] * len(shapes) if self.list_input else self.inputs
            values = []
            for k, (shp, name) in enumerate(zip(shapes, names)):
                if shp is None:  # an optional argument (Tensor?) not given
                    values.append(None)
                elif name in self.index_inputs:  # integers in the YAML's domain [low, high)
                    d = self.domain.get(name, {})
                    rng = np.random.default_rng(seed + 17 * i + k)
                    values.append(rng.integers(int(d.get("low", 0)), int(d.get("high", 3)), size=shp)
                                  .astype(np.int64).view(Indices))
                else:
                    values.append(_values(lambda s, k=k: seed + 17 * i + k, shp, dtype, self.domain.get(name)))
            yield shapes, values


    def forward(self, *arrays, **attrs):
        """One array the gradient checks differentiate: the op's result."""
        return self.call(*arrays, **attrs)


@dataclass
class MultiCase(ImplCase):
    """An impl op with several outputs; `outputs` lists the visible ones as
    (name, fixed dtype or None, differentiable). The reference returns a
    tuple of them in that order."""
    outputs: list = field(default_factory=list)

    def results(self, *arrays, **attrs) -> list:
        got = self.call(*arrays, **attrs)
        return list(got) if len(self.outputs) > 1 else [got]

    def expected(self, *arrays, **attrs) -> list:
        want = self.reference(*arrays, **attrs)
        return list(want) if len(self.outputs) > 1 else [want]

    def forward(self, *arrays, **attrs):
        """sum_k <w_k, output_k> over the differentiable outputs, with fixed
        weights per output and shape: one scalar whose gradient involves
        every output's backward (a plain sum would hide a mix-up between them)."""
        total = None
        results = self.results(*arrays, **attrs)  # first: a ListCase learns its outputs from the call
        for k, ((name, _, diff), out) in enumerate(zip(self.outputs, results, strict=True)):
            if not diff:
                continue
            rng = np.random.default_rng([k, *out.shape])
            w = lm.nd.array(rng.uniform(0.5, 1.5, out.shape), dtype=out.dtype, ctx=out.device)
            term = (out * w).sum()
            total = term if total is None else total + term
        return total

    def output_dtype(self, k: int, dtype: str) -> str:
        return self.outputs[k][1] or dtype


@dataclass
class ListCase(MultiCase):
    """A view op whose output is a list of arrays (`Tensor[]`, split): as
    many as its count attribute says. The reference returns a list; each
    array is a differentiable output named `<output>[k]`."""
    output: str = "out"
    count: str = "num_outputs"

    def expected_count(self, attrs) -> int:
        """What the YAML's count says for these attributes: an int
        attribute's value, or len(<int[] attribute>)."""
        if self.count.startswith("len("):
            return len(attrs[self.count[4:-1].strip()])
        return int(attrs[self.count])

    def results(self, *arrays, **attrs) -> list:
        got = self.call(*arrays, **attrs)
        assert isinstance(got, list), f"{self.name} returned {type(got).__name__}, not a list"
        assert len(got) == self.expected_count(dict(self.attrs, **attrs)), \
            f"{self.name}: {len(got)} arrays for {self.count} with attributes {attrs}"
        self.outputs = [(f"{self.output}[{k}]", None, True) for k in range(len(got))]
        return got

    def expected(self, *arrays, **attrs) -> list:
        return list(self.reference(*arrays, **attrs))


def check_list_method_matches_function(case: ListCase):
    """x.<op>(...) gives the function's arrays."""
    for shapes, arrays in case.arrays("float64", seed=21):
        x = lm.nd.array(arrays[0])
        by_method = getattr(x, case.name)(**case.attrs)
        by_function = case.results(x, **case.attrs)
        assert len(by_method) == len(by_function), f"{case.name} {shapes}"
        for m, f in zip(by_method, by_function):
            np.testing.assert_array_equal(m.asnumpy(), f.asnumpy(), err_msg=f"{case.name} {shapes}: method")


def check_list_views_share_memory(case: ListCase):
    """Every array of the list is a view of the input: a write to the input
    shows in each, and a write to one changes exactly its part of the input."""
    for shapes, arrays in case.arrays("float64", seed=13):
        if arrays[0].size == 0:
            continue
        x = lm.nd.array(arrays[0])
        parts = case.results(x, **case.attrs)
        x += 1.0
        for k, (p, w) in enumerate(zip(parts, case.expected(arrays[0] + 1.0, **case.attrs))):
            np.testing.assert_array_equal(p.asnumpy(), w, err_msg=f"{case.name} {shapes}: part {k} after a write "
                                          "to the input")
        for k, p in enumerate(parts):
            before, seen = x.asnumpy().copy(), p.asnumpy().copy()
            p += 1.0
            np.testing.assert_allclose(x.asnumpy().sum() - before.sum(), seen.size, rtol=1e-12,
                                       err_msg=f"{case.name} {shapes}: a write to part {k}")
            assert (x.asnumpy() != before).sum() == seen.size, f"{case.name} {shapes}: a write to part {k}"


def _compare_outputs(case: MultiCase, got: list, want: list, dtype: str, label: str):
    assert len(got) == len(case.outputs), f"{case.name}: {len(got)} results for outputs {case.outputs}"
    assert len(want) == len(got), f"{case.name} {label}: {len(got)} results, the reference gives {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        name, out_dtype = case.outputs[k][0], case.output_dtype(k, dtype)
        g, w = g.asnumpy(), np.asarray(w)
        assert g.shape == w.shape, f"{case.name} {label}: output '{name}' has shape {g.shape}, expected {w.shape}"
        assert g.dtype == np.dtype(out_dtype), f"{case.name} {label}: output '{name}' is {g.dtype}, expected {out_dtype}"
        tol = _impl_tol(case, dtype) if out_dtype == dtype else dict(rtol=0, atol=0)
        np.testing.assert_allclose(g, w.astype(out_dtype), **tol, err_msg=f"{case.name} {label}: output '{name}'")


def check_multi_forward(case: MultiCase, dtype: str):
    """Every output of every tests.shapes case equals the NumPy reference's."""
    for shapes, arrays in case.arrays(dtype):
        got = case.results(*[_nd(a, dtype) for a in arrays], **case.attrs)
        _compare_outputs(case, got, case.expected(*arrays, **case.attrs), dtype, f"shapes {shapes}")


def check_multi_strided(case: MultiCase):
    """Transposed views as inputs give the dense inputs' outputs."""
    for dtype in case.kernel_dtypes:
        for shapes, arrays in case.arrays(dtype, seed=5):
            views = [_on(lm.cpu(), a, dtype, a is not None and a.ndim == 2) for a in arrays]
            got = case.results(*views, **case.attrs)
            _compare_outputs(case, got, case.expected(*arrays, **case.attrs), dtype, f"shapes {shapes}, transposed")


def check_no_out_variant(case: MultiCase):
    """An op with several outputs takes no out= (it would name one array)."""
    shapes, arrays = next(case.arrays(case.kernel_dtypes[0]))
    with pytest.raises(TypeError):
        case.call(*[_nd(a, case.kernel_dtypes[0]) for a in arrays], out=lm.nd.zeros((1,)), **case.attrs)


def _impl_tol(case, dtype):
    return case.tol.get(dtype) or {"float32": dict(rtol=1e-5, atol=1e-5),
                                   "float64": dict(rtol=1e-12, atol=1e-12)}.get(dtype, dict(rtol=0, atol=0))


def check_impl_forward(case: ImplCase, dtype: str):
    """Every tests.shapes case equals the NumPy reference, in the input dtype."""
    for shapes, arrays in case.arrays(dtype):
        got = case.call(*[_nd(a, dtype) for a in arrays], **case.attrs).asnumpy()
        want = np.asarray(case.reference(*arrays, **case.attrs))
        assert got.shape == want.shape, shapes
        result = case.result_dtype(dtype)
        assert got.dtype == np.dtype(result)
        np.testing.assert_allclose(got, want.astype(result), **_impl_tol(case, dtype), err_msg=str(shapes))


def check_impl_out(case: ImplCase):
    """out= (dense, transposed, or the same memory as an input) gets the
    result; a wrong shape is refused by name."""
    dtype = case.kernel_dtypes[0]
    shapes, arrays = next(case.arrays(dtype, seed=3))
    args = [_nd(a, dtype) for a in arrays]
    want = case.call(*args, **case.attrs).asnumpy()
    dtype = case.result_dtype(dtype)
    if not case.has_out:
        with pytest.raises(TypeError):
            case.call(*args, out=lm.nd.zeros(want.shape, dtype=dtype))
        return
    out = lm.nd.zeros(want.shape, dtype=dtype)
    assert case.call(*args, out=out, **case.attrs) is not None
    np.testing.assert_array_equal(out.asnumpy(), want)
    if want.ndim == 2:
        t = lm.nd.zeros(want.shape[::-1], dtype=dtype).T
        case.call(*args, out=t, **case.attrs)
        np.testing.assert_array_equal(t.asnumpy(), want)
    for i, a in enumerate(args):  # out= aliasing an input of the result's shape
        if a is not None and a.shape == want.shape and a.dtype == dtype:
            alias = lm.nd.array(arrays[i], dtype=dtype)
            case.call(*[alias if j == i else args[j] for j in range(len(args))], out=alias, **case.attrs)
            np.testing.assert_allclose(alias.asnumpy(), want, **_impl_tol(case, dtype))
    with pytest.raises(ValueError, match=f"{case.name}: out= has shape"):
        case.call(*args, out=lm.nd.zeros(want.shape + (2,), dtype=dtype), **case.attrs)


def check_impl_inplace(case: ImplCase):
    """op_ of an impl kernel declared `inplace` (its kernel may write over
    that input) overwrites the input with the out-of-place result, for
    every tests.shapes case, in each dtype; the autograd rules are the
    pointwise ops' (check_inplace)."""
    target = case.inputs.index(case.inplace)
    inplace = getattr(lm.nd, case.name + "_")
    by_name = partial(_call_by_name, case)
    for dtype in case.kernel_dtypes:
        for shapes, arrays in case.arrays(dtype, seed=7):
            args = [_nd(a, dtype) for a in arrays]
            want = by_name(case.fn, args).asnumpy()
            before = args[target]._version
            result = by_name(inplace, args)
            assert args[target]._version > before, f"{case.name}_ did not bump the version of its input"
            np.testing.assert_allclose(args[target].asnumpy(), want, **_impl_tol(case, dtype))
            np.testing.assert_allclose(result.asnumpy(), want, **_impl_tol(case, dtype))
    if case.inplace not in case.diff_inputs:
        return
    for shapes, arrays in case.arrays("float64", seed=9):
        fresh = [_nd(a, "float64") for a in arrays]
        fresh[target].attach_grad()
        with lm.autograd.record():
            with pytest.raises(ValueError, match=f"{case.name}_: .* is a leaf that requires grad"):
                by_name(inplace, fresh)
            with lm.autograd.pause():  # allowed there (an optimiser's update)
                by_name(inplace, fresh)
        np.testing.assert_allclose(fresh[target].asnumpy(), by_name(case.fn, [_nd(a, "float64") for a in arrays]).asnumpy(),
                                   rtol=1e-12, atol=1e-12)
        _check_inplace_gradient(case, inplace, arrays, target)


def check_impl_strided(case: ImplCase):
    """Transposed and sliced views give the same result as dense inputs."""
    for dtype in case.kernel_dtypes:
        for shapes, arrays in case.arrays(dtype, seed=5):
            views = []
            for a in arrays:
                if a is not None and a.ndim >= 2:  # a view with the last two axes swapped in memory
                    perm = list(range(a.ndim - 2)) + [a.ndim - 1, a.ndim - 2]
                    dense = _nd(np.ascontiguousarray(np.transpose(a, perm)).view(type(a)), dtype)
                    v = dense._as_strided(a.shape, [dense.strides[p] for p in perm], 0)
                    assert not v.is_contiguous() or a.shape[-1] == 1 or a.shape[-2] == 1
                    views.append(v)
                else:
                    views.append(_nd(a, dtype))
            want = np.asarray(case.reference(*arrays, **case.attrs)).astype(case.result_dtype(dtype))
            np.testing.assert_allclose(case.call(*views, **case.attrs).asnumpy(), want,
                                       **_impl_tol(case, dtype), err_msg=str(shapes))


# ------------------------------------------------------------------ gradients

def _grad_problems(case) -> list:
    """(label, fn, float64 inputs) triples the gradient checks run: small
    shapes, broadcasting ones for broadcast ops (so gradients are reduced
    back to each input's shape), several dims/keepdim for reductions."""
    rng_seed = 1234
    if isinstance(case, ReduceCase):
        attrs = _other_attrs(case)
        configs = [((3, 4), None, False), ((3, 4), 1, False), ((3, 4), [0], True),
                   ((2, 3, 4), [0, 2], False), ((5,), -1, True)]
        problems = []
        for i, (shape, dims, keepdim) in enumerate(configs):
            x = _values(lambda s, i=i: rng_seed + i, shape, "float64", case.domain.get(case.inputs[0]))
            fn = (lambda d, k: lambda x: case.fn(x, dims=d, keepdim=k, **attrs))(dims, keepdim)
            problems.append((f"shape {shape}, dims={dims}, keepdim={keepdim}", fn, [x]))
        return problems
    if isinstance(case, ImplCase):
        return [(f"shapes {shapes}, attrs {case.attrs}",
                 (lambda a: lambda *xs: case.forward(*xs, **a))(dict(case.attrs)), values)
                for shapes, values in case.arrays("float64", seed=rng_seed)]
    if case.shape_rule == "broadcast":
        n = len(case.inputs)
        shape_sets = {2: [[(2, 3), (2, 3)], [(2, 3), (3,)], [(2, 1), (1, 3)], [(), (2, 2)]],
                      3: [[(2, 3), (2, 3), (2, 3)], [(2, 3), (3,), (2, 1)]]}[n]
    else:
        shape_sets = [[(2, 3)], [()], [(4,)]]
    problems = []
    for i, shapes in enumerate(shape_sets):
        values = [_values(lambda s, i=i, k=k: rng_seed + 10 * i + k, shp, "float64", case.domain.get(name))
                  for k, (shp, name) in enumerate(zip(shapes, case.inputs))]
        fn = lambda *xs: case.fn(*xs, **case.attrs)
        problems.append((f"shapes {shapes}", fn, values))
    return problems


# Tighter than the usual atol 1e-5 / rtol 1e-3: float64 central differences
# with eps 1e-6 are good to ~1e-9 on these smooth, well-scaled problems, and
# a loose rtol lets a gradient that is 0.1% off pass.
GRADCHECK_DEFAULTS = dict(eps=1e-6, atol=1e-6, rtol=1e-5)


def _gradcheck_options(case) -> dict:
    return dict(GRADCHECK_DEFAULTS, **{k: v for k, v in case.gradcheck.items() if k in ("eps", "atol", "rtol")})


def _run_gradchecks(case, check, what):
    for label, fn, values in _grad_problems(case):
        wrt, names = case.differentiable(values)
        try:
            check(fn, values, wrt=wrt, names=names, **_gradcheck_options(case))
        except lm.autograd.GradcheckError as e:
            raise AssertionError(f"{case.name} ({label}, {what}): {e}") from None


def check_gradients(case):
    """float64 analytic gradients (the YAML's grad: formulas through autograd)
    equal central finite differences of the forward op."""
    _run_gradchecks(case, lm.autograd.gradcheck, "gradient")


def check_second_gradients(case):
    """Gradients of the gradients (create_graph=True) equal finite
    differences of the first-order gradients."""
    _run_gradchecks(case, lm.autograd.gradgradcheck, "second derivative")


# ------------------------------------------------------------------ reductions

@dataclass
class ReduceCase(_Case):
    int_promote: bool
    has_identity: bool

    def result_dtype(self, dtype: str) -> str:
        if self.int_promote and not np.issubdtype(np.dtype(dtype), np.floating):
            return "int64"
        return dtype


REDUCE_TOL = {"float32": dict(rtol=2e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-10)}


@st.composite
def _reduce_inputs(draw, case: ReduceCase, dtype: str):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    rank = len(shape)
    how = draw(st.sampled_from(["all", "int", "list", "empty"])) if rank else "all"
    if how == "all":
        dims = None
    elif how == "int":
        dims = draw(st.integers(-rank, rank - 1))
    elif how == "list":
        picked = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        # Some dims spelled negatively, as users do.
        dims = [d - rank if draw(st.booleans()) else d for d in picked]
    else:
        dims = []
    keepdim = draw(st.booleans())
    x = _values(draw, shape, dtype, case.domain.get(case.inputs[0]))
    # Transposed views half the time: reductions must honour strides.
    transposed = rank >= 2 and draw(st.booleans())
    return x, dims, keepdim, transposed


def check_reduce_forward(case: ReduceCase, dtype: str):
    """Random shapes (0-d and zero-size included), dims (None, an int, a list
    with negative entries, empty) and keepdim, on dense and transposed inputs:
    loom equals NumPy, or both refuse (max/min over an empty dim)."""

    @settings()  # the active profile (conftest.py): ci or thorough
    @given(_reduce_inputs(case, dtype))
    def run(drawn):
        x, dims, keepdim, transposed = drawn
        arr = lm.nd.array(np.ascontiguousarray(x.T)).T if transposed else lm.nd.array(x, dtype=dtype)
        attrs = dict(case.attrs, **{"dims": dims, "keepdim": keepdim})
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty slice is NaN
                want = np.asarray(case.ref(x, **attrs))
        except ValueError:
            with pytest.raises(ValueError, match=case.name):
                case.fn(arr, **attrs)
            return
        got = case.fn(arr, **attrs).asnumpy()
        assert got.shape == want.shape, (x.shape, dims, keepdim)
        result = case.result_dtype(dtype)
        assert got.dtype == np.dtype(result), f"{case.name}: result dtype {got.dtype}, expected {result}"
        tol = case.tol.get(dtype) or REDUCE_TOL.get(dtype, dict(rtol=0, atol=0))
        np.testing.assert_allclose(got, want.astype(result), **tol)

    run()


def _other_attrs(case: ReduceCase) -> dict:
    """The op's attributes besides dims and keepdim, which the checks set."""
    return {k: v for k, v in case.attrs.items() if k not in ("dims", "keepdim")}


def check_reduce_out(case: ReduceCase):
    """out= receives the result; a wrong shape or dtype is refused by name."""
    dtype = case.kernel_dtypes[0]
    x = lm.nd.array(_values(lambda s: 5, (3, 4, 5), dtype, case.domain.get(case.inputs[0])))
    want = case.fn(x, dims=[0, 2], keepdim=False, **_other_attrs(case)).asnumpy()
    if not case.has_out:
        with pytest.raises(TypeError):
            case.fn(x, dims=[0, 2], out=lm.nd.zeros((4,), dtype=case.result_dtype(dtype)))
        return
    out = lm.nd.zeros((4,), dtype=case.result_dtype(dtype))
    case.fn(x, dims=[0, 2], out=out, **_other_attrs(case))
    np.testing.assert_allclose(out.asnumpy(), want)
    with pytest.raises(ValueError, match=f"{case.name}: out= has shape"):
        case.fn(x, dims=[0, 2], out=lm.nd.zeros((5,), dtype=case.result_dtype(dtype)), **_other_attrs(case))


def check_reduce_bad_dims(case: ReduceCase):
    dtype = case.kernel_dtypes[0]
    x = lm.nd.array(np.ones((2, 3), dtype=dtype))
    with pytest.raises(IndexError, match=rf"{case.name}: dim 2 is out of range for an array of shape \(2, 3\)"):
        case.fn(x, dims=2, **_other_attrs(case))
    with pytest.raises(IndexError, match=case.name):
        case.fn(x, dims=[-3], **_other_attrs(case))
    with pytest.raises(ValueError, match=rf"{case.name}: dim -1 is repeated"):
        case.fn(x, dims=[1, -1], **_other_attrs(case))


# ------------------------------------------------------------------ CPU vs CUDA

GPU_TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def _gpu_or_skip():
    if lm.num_gpus() == 0:
        pytest.skip("needs a GPU (none visible to this process)")
    return lm.gpu(0)


def _gpu_problems(case, dtype):
    """(label, attrs, arrays) the CPU-vs-CUDA check runs: sizes past one
    block of threads, broadcasting, 0-d, zero-size, and transposed inputs
    (the strided kernel)."""
    seed = 99
    draw = lambda s, k: _values(lambda _s: seed + k, s, dtype, case.domain.get(case.inputs[k % len(case.inputs)]))
    if isinstance(case, ImplCase):
        return [(f"shapes {shapes}", case.attrs, arrays, False) for shapes, arrays in case.arrays(dtype, seed)]
    if isinstance(case, ReduceCase):
        other = _other_attrs(case)
        problems = []
        for shape, dims, keepdim in [((100_003,), None, False), ((257, 129), 0, False), ((257, 129), 1, True),
                                     ((6, 70, 33), [0, 2], False), ((), None, False), ((0, 4), 1, False)]:
            x = draw(shape, 0)
            problems.append((f"shape {shape}, dims={dims}", dict(other, dims=dims, keepdim=keepdim), [x], False))
            if len(shape) >= 2:
                problems.append((f"shape {shape}, dims={dims}, transposed", dict(other, dims=dims, keepdim=keepdim),
                                 [x], True))
        return problems
    n = len(case.inputs)
    if case.shape_rule == "broadcast":
        sets = {2: [[(100_003,)] * 2, [(257, 129), (129,)], [(3, 1, 5), (1, 4, 5)], [(), (2, 3)], [(0, 3), (3,)]],
                3: [[(100_003,)] * 3, [(257, 129), (129,), (257, 1)], [(), (2, 3), (3,)]]}[n]
    else:
        sets = [[(100_003,)] * n, [(257, 129)] * n, [()] * n, [(0, 4)] * n]
    problems = []
    for shapes in sets:
        arrays = [draw(s, k) for k, s in enumerate(shapes)]
        problems.append((f"shapes {shapes}", case.attrs, arrays, False))
        if all(len(s) == 2 for s in shapes):
            problems.append((f"shapes {shapes}, transposed", case.attrs, arrays, True))
    return problems


def _on(device, a, dtype, transposed):
    if a is None:
        return None
    if transposed:  # the same values through a view with swapped strides
        return _nd(np.ascontiguousarray(a.T).view(type(a)), dtype, ctx=device).T
    return _nd(a, dtype, ctx=device)


def check_cuda_matches_cpu(case):
    """The CUDA kernels give the CPU kernels' values (same shapes, dtypes,
    layouts), and the gradients agree too; an op without a CUDA kernel
    refuses a GPU input with a clear error. Skipped without a GPU."""
    gpu = _gpu_or_skip()
    if not lm._C.op_info(case.name)["cuda"]:
        x = lm.nd.array(_values(lambda s: 1, (3, 4), case.kernel_dtypes[0], {}), ctx=gpu)
        with pytest.raises(lm.LoomError, match=case.name):
            case.call(*[x] * len(case.inputs), **case.attrs)
        return
    if isinstance(case, UpdateCase):
        for dtype in case.kernel_dtypes + case.half_dtypes:
            drawn = case.draw((257, 129), dtype, seed=8)
            results = []
            for device in (lm.cpu(), gpu):
                arrays = {n: _update_array(v, dtype, device) for n, v in drawn.items()}
                case.fn(*[arrays[n] for n in case.inputs], **case.attrs)
                results.append({m: _host_values(arrays[m]) for m in case.mutates})
            tol = GPU_TOL.get(dtype) or _half_tol(case, dtype, scale=4.0)
            for m in case.mutates:
                np.testing.assert_allclose(results[1][m], results[0][m], **tol,
                                           err_msg=f"{case.name} {dtype}: {m} on the GPU vs the CPU")
        return
    for dtype in case.kernel_dtypes:
        tol = case.tol.get(dtype) or GPU_TOL.get(dtype, dict(rtol=0, atol=0))
        for label, attrs, arrays, transposed in _gpu_problems(case, dtype):
            try:
                want = case.call(*[_on(lm.cpu(), a, dtype, transposed) for a in arrays], **attrs)
            except ValueError:  # e.g. max over an empty dim: the GPU must refuse too
                with pytest.raises(ValueError, match=case.name):
                    case.call(*[_on(gpu, a, dtype, transposed) for a in arrays], **attrs)
                continue
            if isinstance(case, MultiCase):
                got = case.results(*[_on(gpu, a, dtype, transposed) for a in arrays], **attrs)
                assert all(g.device == gpu for g in got), f"{case.name} ({label}): a result is not on the GPU"
                _compare_outputs(case, got, case.results(*[_on(lm.cpu(), a, dtype, transposed) for a in arrays],
                                                         **attrs), dtype, f"{label}: CUDA vs CPU")
                continue
            got = case.call(*[_on(gpu, a, dtype, transposed) for a in arrays], **attrs)
            assert got.device == gpu, f"{case.name} ({label}): result on {got.device}"
            assert got.dtype == want.dtype and got.shape == want.shape, label
            np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), **tol,
                                       err_msg=f"{case.name} {dtype} {label}: CUDA vs CPU")
    _check_cuda_gradients(case, gpu)


def _check_cuda_gradients(case, gpu):
    """Backward on the GPU (the fused CUDA backward kernels included) equals
    backward on the CPU, for a random weighting of the outputs."""
    if not case.diff_inputs or "float32" not in case.kernel_dtypes:
        return
    for label, attrs, arrays, transposed in _gpu_problems(case, "float32")[:3]:
        if any(a is not None and a.size == 0 for a in arrays):
            continue
        grads = []
        for device in (lm.cpu(), gpu):
            xs = [_on(device, a, "float32", transposed) for a in arrays]
            wrt = [xs[i] for i in case.differentiable(xs)[0]]
            for x in wrt:
                x.attach_grad()
            with lm.autograd.record():
                y = case.forward(*xs, **attrs) if isinstance(case, ImplCase) else case.call(*xs, **attrs)
                w = lm.nd.array(np.random.default_rng(5).uniform(0.5, 1.5, y.shape).astype("float32"), ctx=device)
                loss = (y * w).sum()
            loss.backward()
            grads.append([x.grad.asnumpy() for x in wrt])
        for name, c, g in zip([case.differentiable(arrays)[1][i] for i in case.differentiable(arrays)[0]], *grads):
            np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-5,
                                       err_msg=f"{case.name} ({label}): d/d{name} on the GPU vs the CPU")


# ------------------------------------------------------------------ views

def check_view_shares_memory(case: ImplCase):
    """A view op's result is the input's memory: a write through the input
    shows in the result, and a write through the result in the input."""
    for shapes, arrays in case.arrays("float64", seed=13):
        if arrays[0].size == 0:
            continue
        x = lm.nd.array(arrays[0])
        view = case.fn(x, **case.attrs)
        x += 1.0
        np.testing.assert_array_equal(view.asnumpy(), np.asarray(case.ref(arrays[0] + 1.0, **case.attrs)),
                                      err_msg=f"{case.name} {shapes}: a write to the input")
        if view.size > x.size:
            # A broadcast view holds some elements twice: a write to it is
            # refused, not left to depend on the order of the stores.
            with pytest.raises(ValueError, match="more than once"):
                view *= 2.0
            continue
        before, seen = x.asnumpy().copy(), view.asnumpy().copy()
        view *= 2.0
        if view.size == x.size:  # a view of every element (transpose, reshape)
            np.testing.assert_array_equal(x.asnumpy(), before * 2.0,
                                          err_msg=f"{case.name} {shapes}: a write to the view")
        else:  # a part of x (slice): exactly its elements doubled in x
            np.testing.assert_array_equal(view.asnumpy(), seen * 2.0, err_msg=f"{case.name} {shapes}: the view")
            changed = x.asnumpy() != before
            assert changed.sum() == np.count_nonzero(seen), f"{case.name} {shapes}: a write to the view"
            np.testing.assert_allclose(x.asnumpy().sum() - before.sum(), seen.sum(), rtol=1e-12,
                                       err_msg=f"{case.name} {shapes}: a write to the view")


# ------------------------------------------------------------------ float32 gradients at size

def _projection_problems(case):
    """(label, fn, float64 inputs) on larger arrays than the gradchecks use."""
    seed = 4321
    draw = lambda shape, k: _values(lambda _s: seed + k, shape, "float64", case.domain.get(case.inputs[k]))
    if isinstance(case, ReduceCase):
        attrs = _other_attrs(case)
        return [(f"(96, 65), dims={d}", (lambda d: lambda x: case.fn(x, dims=d, keepdim=False, **attrs))(d),
                 [draw((96, 65), 0)]) for d in (None, 0, 1)]
    if isinstance(case, ImplCase):
        return [(f"shapes {shapes}, attrs {case.attrs}",
                 (lambda a: lambda *xs: case.forward(*xs, **a))(dict(case.attrs)), values)
                for shapes, values in case.arrays("float64", seed=seed)]
    if case.shape_rule == "broadcast":
        shape_sets = [[(96, 65)] * len(case.inputs), [(96, 65)] + [(65,)] * (len(case.inputs) - 1)]
    else:
        shape_sets = [[(96, 65)] * len(case.inputs)]
    return [(f"shapes {shapes}", lambda *xs: case.fn(*xs, **case.attrs),
             [draw(s, k) for k, s in enumerate(shapes)]) for shapes in shape_sets]


def check_gradient_projection(case):
    """float32 backward on larger inputs: for a random weighting w of the
    outputs and a random direction u per input, <d(sum(w * f))/dx, u>
    from the float32 backward equals the float64 central difference of
    sum(w * f) along u (one scalar per input, so the check costs two
    forward passes however large x is)."""
    if "float32" not in case.kernel_dtypes or not case.diff_inputs:
        pytest.skip(f"{case.name} has no float32 gradient")
    rng = np.random.default_rng(77)
    for label, fn, values in _projection_problems(case):
        wrt, names = case.differentiable(values)
        x32 = [_nd(v, "float32") for v in values]
        for i in wrt:
            x32[i].attach_grad()
        with lm.autograd.record():
            y = fn(*x32)
        w = rng.uniform(0.5, 1.5, y.shape)
        y.backward(lm.nd.array(w.astype(np.float32)))
        # The float64 function evaluated at the float32-rounded inputs.
        base = [None if v is None else v.astype(np.float32).astype(np.float64) for v in values]
        loss = lambda xs: float(np.sum(fn(*[_nd(a if a is None or isinstance(a, Indices) else np.asarray(a), "float64")
                                            for a in xs]).asnumpy() * w))
        for i in wrt:
            u = rng.standard_normal(base[i].shape)
            u /= max(np.linalg.norm(u), 1e-12)
            eps = 1e-6
            plus = [b + eps * u if k == i else b for k, b in enumerate(base)]
            minus = [b - eps * u if k == i else b for k, b in enumerate(base)]
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = float(np.sum(x32[i].grad.asnumpy().astype(np.float64) * u))
            scale = max(1.0, float(np.linalg.norm(x32[i].grad.asnumpy())))
            assert abs(analytic - numeric) <= 1e-5 * scale, (
                f"{case.name} ({label}): float32 gradient of '{names[i]}' projected on a random "
                f"direction is {analytic:.7g}, finite differences give {numeric:.7g}")


# ------------------------------------------------------------------ in-place updates (kernel.update)

# The expression language's functions, as NumPy: the tests run an update's
# statements on NumPy arrays to get the expected values.
_NUMPY_FUNCTIONS = {
    "where": np.where, "max": np.maximum, "min": np.minimum, "abs": np.abs, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "expm1": np.expm1, "log1p": np.log1p, "log2": np.log2, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "floor": np.floor, "ceil": np.ceil, "round": np.round, "sign": np.sign, "fmod": np.fmod, "mod": np.mod,
}


@dataclass
class UpdateCase(_Case):
    shapes: list
    mutates: list
    statements: list   # [(name, expression text)], run in order

    def expected(self, arrays: dict, attrs: dict) -> dict:
        """The mutated arrays after the statements, computed by NumPy."""
        env = dict(_NUMPY_FUNCTIONS, **attrs, **{k: v.copy() for k, v in arrays.items()})
        with np.errstate(all="ignore"):
            for name, text in self.statements:
                env[name] = np.asarray(eval(text, {"__builtins__": {}}, env), dtype=arrays[self.mutates[0]].dtype)
        return {m: env[m] for m in self.mutates}

    def draw(self, shape, dtype, seed):
        """Values per input; for float16/bfloat16, float32 values already
        rounded to the dtype (the arrays are made from them)."""
        half = dtype in HALF_ULP
        drawn = {name: _values(lambda s, k=k: seed + k, shape, "float32" if half else dtype, self.domain.get(name))
                 for k, name in enumerate(self.inputs)}
        return {n: round_to_half(v, dtype) for n, v in drawn.items()} if half else drawn


def _update_tol(case, dtype):
    # float32 loose enough for FMA contraction (the AVX2 build) against
    # NumPy's separate multiply and add, through a division by sqrt(var).
    return case.tol.get(dtype) or {"float32": dict(rtol=1e-4, atol=1e-5),
                                   "float64": dict(rtol=1e-11, atol=1e-12)}[dtype]


def _update_array(v, dtype: str, device=None):
    """An update test's input: the drawn values in `dtype` (a half dtype
    from its float32 values) on `device`."""
    a = lm.nd.array(v if dtype not in HALF_ULP else v.astype(np.float32), ctx=device)
    return a.astype(dtype) if dtype in HALF_ULP else a


def _host_values(a) -> np.ndarray:
    return (a.astype("float32") if a.dtype in HALF_ULP else a).asnumpy()


def check_update_forward(case: UpdateCase, dtype: str):
    """Dense and strided arrays of several shapes (0-d, zero-size and past
    the threading threshold): the updated arrays equal NumPy's run of the
    statements, the others are untouched, and the updated ones' versions
    were bumped. float16/bfloat16: the statements run in float32 on the
    half-rounded inputs, and each updated array is rounded once."""
    half = dtype in HALF_ULP
    tol = _half_tol(case, dtype, scale=4.0) if half else _update_tol(case, dtype)
    for i, shape in enumerate(case.shapes + [(70_001,)]):
        shape = tuple(shape)
        drawn = case.draw(shape, dtype, seed=31 + 7 * i)
        want = case.expected(drawn, case.attrs)
        for strided in (False, True):
            if strided and len(shape) != 2:
                continue
            arrays = {n: (_update_array(np.ascontiguousarray(v.T), dtype).T if strided else _update_array(v, dtype))
                      for n, v in drawn.items()}
            versions = {m: arrays[m]._version for m in case.mutates}
            result = case.fn(*[arrays[n] for n in case.inputs], **case.attrs)
            assert result.shape == shape
            for m in case.mutates:
                np.testing.assert_allclose(_host_values(arrays[m]), round_to_half(want[m], dtype) if half else want[m],
                                           **tol, err_msg=f"{case.name} {dtype} {shape} strided={strided}: {m}")
                assert arrays[m]._version > versions[m]
            for n in case.inputs:
                if n not in case.mutates:
                    np.testing.assert_array_equal(_host_values(arrays[n]), drawn[n])


def check_update_arguments(case: UpdateCase):
    """Mismatched shapes, arrays sharing memory, mixed dtypes among the
    updated arrays, and recording with a weight that requires grad are
    errors naming the op."""
    drawn = case.draw((3, 4), case.kernel_dtypes[0], seed=5)
    arrays = [lm.nd.array(drawn[n]) for n in case.inputs]
    wrong = list(arrays)
    wrong[-1] = lm.nd.zeros((4, 3), dtype=case.kernel_dtypes[0])
    with pytest.raises(ValueError, match=rf"{case.name}: .* has shape \(4, 3\) but .* has shape \(3, 4\)"):
        case.fn(*wrong, **case.attrs)
    shared = list(arrays)
    first = case.inputs.index(case.mutates[0])
    other = next(i for i in range(len(arrays)) if i != first)
    shared[other] = arrays[first]
    with pytest.raises(ValueError, match=rf"{case.name}: .* share memory"):
        case.fn(*shared, **case.attrs)
    if len(case.mutates) > 1 and "float64" in case.kernel_dtypes and "float32" in case.kernel_dtypes:
        mixed = list(arrays)
        k = case.inputs.index(case.mutates[1])
        mixed[k] = lm.nd.array(drawn[case.mutates[1]].astype("float64"))
        with pytest.raises(TypeError, match=rf"{case.name}: {case.mutates[1]} has dtype float64"):
            case.fn(*mixed, **case.attrs)
    weight = arrays[first]
    weight.attach_grad()
    with lm.autograd.record():
        with pytest.raises(ValueError, match=rf"{case.name}: cannot update arrays that require grad"):
            case.fn(*arrays, **case.attrs)
    with lm.autograd.pause():
        case.fn(*arrays, **case.attrs)


# ------------------------------------------------------------------ float16 / bfloat16
# Half-precision kernels compute in float32 and round each result once, so
# they must match the float32 NumPy reference on the same (half-rounded)
# inputs, rounded to the dtype, within about one unit in the last place.

HALF_ULP = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}


def round_to_half(x, dtype: str) -> np.ndarray:
    """float32 values rounded to `dtype` with round-to-nearest-even, as float32."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    u16, one = np.uint64(16), np.uint64(1)  # typed: NumPy 1.x turns uint64 op int into float
    kept = ((bits + np.uint64(0x7FFF) + ((bits >> u16) & one)) >> u16) << u16
    return np.where(np.isnan(x), np.float32(np.nan), kept.astype(np.uint32).view(np.float32))


def _half_nd(a, dtype):
    a = np.asarray(a)
    return lm.nd.array(a.astype(np.float32)).astype(dtype) if a.dtype.kind == "f" else lm.nd.array(a)


def _half_tol(case, dtype, scale=1.0):
    f32 = case.tol.get("float32") or DEFAULT_TOL["float32"]
    ulp = HALF_ULP[dtype]
    return dict(rtol=2 * ulp + f32["rtol"], atol=max(f32["atol"], 2 * ulp * scale, 1e-6))


def check_half_forward(case: OpCase, dtype: str):
    """Random shapes and values, broadcasting included, in float16/bfloat16."""

    @settings()  # the active profile (conftest.py): ci or thorough
    @given(_inputs(case, "float32"))
    def run(arrays):
        arrays = [round_to_half(a, dtype) for a in arrays]
        got = case.fn(*[_half_nd(a, dtype) for a in arrays], **case.attrs)
        result = case.result_dtype(dtype)
        assert got.dtype == result, f"{case.name}: result dtype {got.dtype}, expected {result}"
        with np.errstate(all="ignore"):
            want = np.asarray(case.ref(*arrays, **case.attrs))
        if result == "bool":
            np.testing.assert_array_equal(got.asnumpy(), want)
            return
        np.testing.assert_allclose(got.astype("float32").asnumpy(), round_to_half(want, dtype),
                                   **_half_tol(case, dtype))

    run()


def check_half_gradient(case, dtype: str):
    """Gradients flow in float16/bfloat16 (the backward's ops run in the
    dtype) and agree with float32 gradients at the same inputs within the
    rounding of a few half-precision steps."""
    if not case.diff_inputs:
        return
    rng = np.random.default_rng(11)
    domain = case.domain
    arrays = []
    for name in case.inputs:
        d = domain.get(name) or {}
        arrays.append(round_to_half(_values(lambda s: int(rng.integers(1 << 30)), (3, 4), "float32", d), dtype))
    grads = {}
    for run_dtype in ("float32", dtype):
        xs = [_half_nd(a, run_dtype) for a in arrays]
        for i, name in enumerate(case.inputs):
            if name in case.diff_inputs:
                xs[i].attach_grad()
        with lm.autograd.record():
            y = case.fn(*xs, **case.attrs)
        y.backward()
        diff = [i for i, n in enumerate(case.inputs) if n in case.diff_inputs]
        assert all(xs[i].grad.dtype == run_dtype for i in diff), case.name
        grads[run_dtype] = [xs[i].grad.astype("float32").asnumpy() for i in diff]
    for want, got in zip(grads["float32"], grads[dtype]):
        scale = float(np.max(np.abs(want), initial=1.0))
        ulp = HALF_ULP[dtype]
        np.testing.assert_allclose(got, want, rtol=8 * ulp, atol=8 * ulp * scale, err_msg=case.name)


def check_half_reduce(case: ReduceCase, dtype: str):
    """Reductions of float16/bfloat16 accumulate in float32: they match the
    float32 NumPy reference on the half-rounded input, rounded once."""

    @settings()  # the active profile (conftest.py): ci or thorough
    @given(_reduce_inputs(case, "float32"))
    def run(drawn):
        x, dims, keepdim, transposed = drawn
        x = round_to_half(x, dtype)
        arr = _half_nd(np.ascontiguousarray(x.T), dtype).T if transposed else _half_nd(x, dtype)
        attrs = dict(case.attrs, **{"dims": dims, "keepdim": keepdim})
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                want = np.asarray(case.ref(x.astype(np.float64), **attrs))
        except ValueError:
            with pytest.raises(ValueError, match=case.name):
                case.fn(arr, **attrs)
            return
        got = case.fn(arr, **attrs)
        assert got.dtype == dtype, f"{case.name}: result dtype {got.dtype}, expected {dtype}"
        scale = float(np.abs(x).sum()) if x.size else 1.0  # what cancellation can leave behind
        tol = _half_tol(case, dtype)
        tol["atol"] = max(tol["atol"], 1e-6 * scale)
        np.testing.assert_allclose(got.astype("float32").asnumpy(), round_to_half(want, dtype), **tol)

    run()


def _half_args(values, dtype):
    """Half-representable values as arrays of `dtype`; indices stay int64, None stays None."""
    return [None if a is None else _nd(a, "int64") if isinstance(a, Indices) else _half_nd(a, dtype) for a in values]


def check_impl_half(case: ImplCase, dtype: str, exact: bool = True):
    """float16/bfloat16 through hand-written kernels: the float32 kernels run
    on the half inputs' values and each float result is rounded once, so the
    result equals the float32 op on the same (half-representable) values,
    rounded to the dtype, exactly; out= gets the same. A composite rounds
    after each op it calls (exact=False: within two half ulps)."""
    multi = isinstance(case, MultiCase)
    for shapes, arrays in case.arrays("float32", seed=11):
        values = [a if a is None or isinstance(a, Indices) else round_to_half(a, dtype) for a in arrays]
        want = case.call(*[_nd(a, "float32") for a in values], **case.attrs)
        got = case.call(*_half_args(values, dtype), **case.attrs)
        wants, gots = (list(want), list(got)) if isinstance(want, (list, tuple)) else ([want], [got])
        for k, (w, g) in enumerate(zip(wants, gots)):
            label = f"{case.name} {dtype} shapes {shapes} output {k}"
            if w.dtype != "float32":  # indices, masks: the same values in their own dtype
                assert g.dtype == w.dtype, label
                np.testing.assert_array_equal(g.asnumpy(), w.asnumpy(), err_msg=label)
                continue
            assert g.dtype == dtype, f"{label}: dtype {g.dtype}"
            if exact:
                np.testing.assert_array_equal(g.astype("float32").asnumpy(), round_to_half(w.asnumpy(), dtype),
                                              err_msg=label)
            else:
                w32 = w.asnumpy()
                np.testing.assert_allclose(g.astype("float32").asnumpy(), w32, rtol=2 * HALF_ULP[dtype],
                                           atol=2 * HALF_ULP[dtype] * max(1.0, float(np.abs(w32).max(initial=0))),
                                           err_msg=label)
    if case.has_out and not multi:
        shapes, arrays = next(case.arrays("float32", seed=12))
        args = _half_args([a if a is None or isinstance(a, Indices) else round_to_half(a, dtype) for a in arrays],
                          dtype)
        want = case.call(*args, **case.attrs)
        if want.dtype == dtype:
            out = lm.nd.zeros(want.shape, dtype=dtype)
            case.call(*args, out=out, **case.attrs)
            np.testing.assert_array_equal(out.astype("float32").asnumpy(), want.astype("float32").asnumpy(),
                                          err_msg=f"{case.name} {dtype}: out=")
