"""What this build of loom has, and what it can use on this machine: MXNet's
mx.runtime.Features, for bug reports and for code (and tests) that must
know before trying.

    >>> import loom as lm
    >>> lm.runtime.Features().is_enabled("CUDNN")
    True
    $ python -m loom.runtime          # the table, with what each part is for

Build parts come from how libloom was compiled (configure.py's summary);
ZMQ, MPI and NCCL are asked of the comm layer, so NCCL is enabled only when
its library can be opened here; GPUS counts the visible devices."""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from loom import _C


class Feature(NamedTuple):
    name: str
    enabled: bool
    detail: str

    def __repr__(self) -> str:
        return f"{'✔' if self.enabled else '✖'} {self.name}"


def feature_list() -> list[Feature]:
    """Every feature, in a fixed order."""
    out = [Feature(name, bool(enabled), detail) for name, enabled, detail in _C.build_features()]
    comm = _C.comm
    out.append(Feature("ZMQ", bool(comm.available()), "multi-process transport (KVStore dist_*, launcher)"))
    out.append(Feature("MPI", bool(comm.mpi_available()), "mpirun launcher, dist_sync_allreduce over MPI"))
    nccl = bool(comm.nccl_available())
    v = comm.nccl_version() if nccl else 0
    version = f" {v // 10000}.{v // 100 % 100}.{v % 100}" if nccl else ""
    out.append(Feature("NCCL", nccl, f"GPU collectives (KVStore nccl){version}"))
    from loom.context import num_gpus
    gpus = num_gpus()
    out.append(Feature("GPUS", gpus > 0, f"{gpus} visible GPU(s)"))
    return out


class Features(OrderedDict):
    """name -> Feature, with is_enabled(name)."""

    def __init__(self):
        super().__init__((f.name, f) for f in feature_list())

    def is_enabled(self, name: str) -> bool:
        key = name.upper()
        if key not in self:
            raise RuntimeError(f"runtime.Features: no feature named {name!r}; known: {', '.join(self)}")
        return self[key].enabled

    def __repr__(self) -> str:
        return "[" + ", ".join(repr(f) for f in self.values()) + "]"


def _print_table() -> None:
    rows = feature_list()
    width = max(len(f.name) for f in rows)
    for f in rows:
        print(f"{f.name:<{width}}  {'yes' if f.enabled else 'no ':<3}  {f.detail}")


if __name__ == "__main__":
    _print_table()
