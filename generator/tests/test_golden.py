"""Golden files: what the generator emits for representative ops, byte for
byte. A deliberate change to templates or emitters is accepted with
    LOOM_UPDATE_GOLDEN=1 .venv/bin/python -m pytest generator/tests/test_golden.py
and the diff reviewed like code."""
import functools
import os
from pathlib import Path

import pytest

from generator import emit, loader

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
# One op per feature: unary with a same_as rule (relu), broadcasting binary
# with promotion (add), bool result (lt), float and bool attributes (clip,
# gelu), three inputs (where), reductions with and without identity (sum, max),
# hand-written kernels with build requirements (matmul), a composite (linear,
# with checks and an optional array), a view (transpose), a Tensor[] list
# (concat), index arguments (take), an in-place update (sgd_mom_update), and
# several outputs, one hidden (softmax_cross_entropy), an op generated from
# its index that draws random numbers (random_normal), and a list of outputs
# as views (split).
SPECS = {
    "opdefs/elementwise/relu.yaml": ["relu"],
    "opdefs/elementwise/add.yaml": ["add"],
    "opdefs/elementwise/compare.yaml": ["lt"],
    "opdefs/elementwise/activation.yaml": ["clip", "gelu"],
    "opdefs/elementwise/where.yaml": ["where"],
    "opdefs/reduce.yaml": ["sum", "max"],
    "opdefs/linalg/matmul.yaml": ["matmul"],
    "opdefs/linalg/linear.yaml": ["linear"],
    "opdefs/shape/views.yaml": ["transpose"],
    "opdefs/shape/join.yaml": ["concat"],
    "opdefs/indexing/indexing.yaml": ["take"],
    "opdefs/optimizer/updates.yaml": ["sgd_mom_update"],
    "opdefs/nn/cross_entropy.yaml": ["softmax_cross_entropy"],
    "opdefs/random/random.yaml": ["random_normal"],
    "opdefs/shape/split.yaml": ["split"],
}


@functools.lru_cache(maxsize=1)  # rendered once, compared file by file
def rendered():
    files = {}
    for spec, names in SPECS.items():
        for op in loader.load_file(ROOT, ROOT / spec):
            if op.name in names:
                files.update(emit.render_op(op))
    files.update(emit.render_index(["add", "relu"], None))
    return files


@pytest.mark.parametrize("path", sorted(rendered()))
def test_generated_file_matches_golden(path):
    content = rendered()[path]
    golden = GOLDEN / (path + ".golden")  # never collected or compiled as-is
    if os.environ.get("LOOM_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(content)
    assert golden.exists(), f"no golden file for {path}: run with LOOM_UPDATE_GOLDEN=1"
    assert content == golden.read_text(), f"{path} differs from {golden}"


def test_generated_test_files_do_not_shadow_hand_written_ones():
    """pytest imports test modules by basename: a generated test_<op>.py
    beside a hand-written tests/python/test_<op>.py of the same name stops
    the collection of the whole run."""
    generated = {f"test_{op.name}.py" for op in loader.load_all(ROOT)}
    hand_written = {p.name for p in (ROOT / "tests" / "python").glob("test_*.py")}
    assert not generated & hand_written, f"rename the hand-written {sorted(generated & hand_written)}"
