"""The build itself: editing one operator's YAML rebuilds only that
operator's objects (PyTorch's generator once rebuilt ~1,100 objects for
such an edit; see shared/OPDSL.md)."""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("LOOM_BUILD_DIR", ROOT / "build"))


def dry_run_edges() -> list[str]:
    out = subprocess.run(["ninja", "-C", str(BUILD), "-n", "-v", "all"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if re.match(r"\[\d+/\d+\]", line)]


@pytest.fixture
def touched_relu_yaml():
    spec = ROOT / "opdefs" / "elementwise" / "relu.yaml"
    st = spec.stat()
    import time
    # Newer than anything ninja has recorded (restat logs the newest input's
    # mtime, which may be a generator module edited after this YAML).
    os.utime(spec, ns=(st.st_atime_ns, time.time_ns() + 10**12))
    try:
        yield spec
    finally:
        os.utime(spec, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.skipif(not (BUILD / "build.ninja").exists(), reason="no configured build")
def test_build_is_up_to_date():
    assert dry_run_edges() == []


@pytest.mark.skipif(not (BUILD / "build.ninja").exists(), reason="no configured build")
def test_one_op_edit_rebuilds_only_that_op(touched_relu_yaml):
    edges = dry_run_edges()
    compiles = [line for line in edges if " -c " in line]
    links = [line for line in edges if " -o lib/" in line or " -o python/" in line or " -o tests/" in line
             or " -o bench/" in line]
    # relu's object files (op, C API, graph schema, CPU kernel three times,
    # CUDA kernel, binding) plus the C++ tests (two), the C test and the C++
    # example, which include its header; then the links that contain them
    # (and the two C++ benchmarks, which link libloom).
    assert 0 < len(compiles) <= 12, "\n".join(compiles)
    assert len(links) <= 7, "\n".join(links)
    for line in edges:
        # Only relu's generation and objects, and the links that contain them.
        assert any(k in line for k in ("relu", " -shared ", "loom_tests", "c_api_test", "engine_bench", "comm_bench",
                                       "--manifest", "tests/cpp/", "tests/c/", "train_mlp")), line
    for other in ("add", "mul"):
        assert not any(f"/{other}." in line or f"bind_{other}" in line for line in compiles), compiles


@pytest.fixture
def tree_copy(tmp_path):
    """The sources configure.py and the generator read, copied to tmp_path."""
    import shutil
    for name in ("configure.py", "build.ninja.in"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("generator", "opdefs", "runtime", "microkernel", "tests/cpp"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def configure(root: Path):
    import sys
    return subprocess.run([sys.executable, "configure.py", "--quiet", "--without-cuda", "--no-link-venv"],
                          cwd=root, capture_output=True, text=True)


def test_malformed_yaml_stops_the_build_with_file_line_and_field(tree_copy):
    assert configure(tree_copy).returncode == 0
    spec = tree_copy / "opdefs" / "elementwise" / "relu.yaml"
    spec.write_text(spec.read_text().replace("tags: [pointwise]", "tags: [pointwise]\ncolour: blue"))
    out = subprocess.run(["ninja", "-C", str(tree_copy / "build"), str(tree_copy / "generated/ops/relu.cc")],
                         capture_output=True, text=True)
    assert out.returncode != 0
    line = spec.read_text().splitlines().index("colour: blue") + 1
    assert f"opdefs/elementwise/relu.yaml:{line}: colour: unknown key" in out.stdout + out.stderr


def test_configure_rejects_a_malformed_spec(tree_copy):
    spec = tree_copy / "opdefs" / "elementwise" / "add.yaml"
    spec.write_text(spec.read_text().replace("  y: grad\n", ""))
    out = configure(tree_copy)
    assert out.returncode == 1
    line = spec.read_text().splitlines().index("grad:") + 1
    assert f"opdefs/elementwise/add.yaml:{line}: grad.y: missing gradient" in out.stderr
