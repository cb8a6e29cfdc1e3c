"""loom: a deep learning framework with a tiny C++ core and generated operators.

    import loom as lm
    x = lm.nd.array([-1.0, 2.0])
    lm.nd.relu(x).asnumpy()          # array([0., 2.], dtype=float32)
"""
# The compiled half of the package (loom/_C*.so) lives in the build
# directory, which configure.py puts on sys.path next to this folder;
# extend_path lets both folders make up the one `loom` package.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

try:
    from loom import _C
except ImportError as e:  # pragma: no cover - depends on the build state
    raise ImportError(
        "loom's compiled core (loom._C) was not found: build it with "
        "`.venv/bin/python configure.py && ninja -C build` (see README.md)") from e

from loom.errors import LoomError  # noqa: E402  (needs _C loaded)

# A bad LOOM_CPU_GEMM fails here, as a ValueError, rather than inside a
# kernel's OpenMP region, where an exception would end the process.
_C.check_cpu_gemm_env()
from loom.context import cpu, gpu, num_gpus  # noqa: E402
from loom import nd  # noqa: E402
from loom import contrib as _contrib  # noqa: E402
from loom import autograd  # noqa: E402
from loom import random  # noqa: E402
from loom import symbol  # noqa: E402
from loom import cached_op  # noqa: E402
from loom import viz  # noqa: E402
from loom import profiler  # noqa: E402
from loom import optimizer  # noqa: E402
from loom import kvstore  # noqa: E402
from loom import kvstore as kv  # noqa: E402  (MXNet's short name)
from loom import gluon  # noqa: E402
from loom import symbol as sym  # noqa: E402  (MXNet's short name)

cached_op.install_guards()
nd.contrib = _contrib  # lm.nd.contrib.foreach / while_loop / cond, as MXNet's mx.nd.contrib

__all__ = ["nd", "autograd", "random", "symbol", "sym", "viz", "profiler", "runtime", "cached_op", "optimizer", "kvstore", "kv", "gluon", "cpu", "gpu", "num_gpus", "LoomError"]


def __getattr__(name):
    # lm.runtime on first use, so that `python -m loom.runtime` runs the
    # module once, as __main__, instead of after the package imported it.
    if name == "runtime":
        import importlib
        return importlib.import_module("loom.runtime")
    raise AttributeError(f"module 'loom' has no attribute {name!r}")
