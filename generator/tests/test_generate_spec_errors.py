"""kernel.generate specs: a good one loads, and each mistake stops the
generator with `file:line: field: message`."""
import pytest

from generator.tests.test_spec_errors import error, load

GOOD = """\
op: ramp
doc: start + i * step, then every row offset.
args:
  start: {type: float, default: 0.0}
  step: {type: float, default: 1.0}
  shape: {type: "int[]"}
  dtype: {type: dtype, default: float32}
  ctx: {type: device, default: null}
outputs:
  out: Tensor
dtypes: [float32, int64]
shape: {attr: shape}
kernel:
  generate: start + (i % cols) * step + i // cols
tests:
  cases: [{shape: [3, 4]}]
  ref: np.arange(np.prod(shape)).reshape(shape) % shape[-1] * step + start + np.arange(np.prod(shape)).reshape(shape) // shape[-1]
"""


def test_good_generate_spec_loads(tmp_path):
    (op,) = load(tmp_path, GOOD)
    assert op.kind == "generate" and op.generate.shape_attr == "shape" and not op.generate.random
    assert [a.name for a in op.attrs] == ["start", "step", "shape", "dtype", "ctx"]


@pytest.mark.parametrize("edit, where, message", [
    (("  start: {type: float, default: 0.0}\n", "  x: Tensor\n  start: {type: float, default: 0.0}\n"),
     "args.x", "attributes only"),
    (("  dtype: {type: dtype, default: float32}\n", ""), "args", "exactly one 'dtype' attribute"),
    (("  ctx: {type: device, default: null}\n", ""), "args", "exactly one 'device' attribute"),
    (("dtype, default: float32}", "dtype, default: float16}"), "args.dtype.default", "not one of the op's dtypes"),
    (("shape: {attr: shape}", "shape: {same_as: x}"), "shape", "{attr: <int[] attribute>}"),
    (("shape: {attr: shape}", "shape: {attr: start}"), "shape.attr", "int[] attribute"),
    (("i // cols\n", "i // step\n"), "kernel.generate", "'//' and '%' take integers"),
    (("i // cols\n", "i // cols + uniform()\n"), "kernel.generate", "unknown function 'uniform'"),
    (("i // cols\n", "i // cols + j\n"), "kernel.generate", "undefined name 'j'"),
    (("  ref: np", "  reff: np"), "tests", "unknown"),
    (("cases: [{shape: [3, 4]}]", "cases: [{step: 2.0}]"), "tests.cases[0].shape", "has no default"),
    (("dtypes: [float32, int64]\n", "dtypes: [float32, int64]\ngrad: {start: grad}\n"), "grad",
     "no array inputs"),
])
def test_generate_spec_errors(tmp_path, edit, where, message):
    old, new = edit
    assert old in GOOD
    text = error(tmp_path, GOOD.replace(old, new, 1))
    assert "op.yaml:" in text and where in text and message in text, text


def test_random_op_needs_moments_not_ref(tmp_path):
    spec = GOOD.replace("dtypes: [float32, int64]\n", "dtypes: [float32, int64]\ntags: [random]\n")
    assert "tests.moments: missing" in error(tmp_path, spec)
    with_ref = spec.replace("  ref: np", "  moments: {mean: start, std: step}\n  ref: np")
    assert "tests.ref: a random op is checked by tests.moments" in error(tmp_path, with_ref)
    spec = spec.replace("  ref: np", "  moments: {mean: start, std: step}\n  range: [start, start]\n  # np")
    (op,) = load(tmp_path, spec.replace("i // cols\n", "i // cols + uniform()\n"))
    assert op.generate.random and op.tests.attrs["moments"] == {"mean": "start", "std": "step"}


def test_dtype_and_device_attributes_belong_to_generate_ops(tmp_path):
    from generator.tests.test_spec_errors import GOOD as POINTWISE
    spec = POINTWISE.replace("  alpha: {type: float, default: 2.0}\n",
                             "  alpha: {type: float, default: 2.0}\n  where: {type: device, default: null}\n")
    text = error(tmp_path, spec)
    assert "args.where.type" in text and "belong to kernel.generate ops" in text, text
