"""Parameters: named arrays a Block owns, with their gradients, initialised
when their shape is known (Gluon's deferred initialisation)."""
from __future__ import annotations

import numpy as np

from loom import _C

NDArray = _C.NDArray


class DeferredInitializationError(RuntimeError):
    """A parameter's shape is not known yet: run the block once on data first."""


class Parameter:
    """A block's array. `shape` may hold 0 for a dim learnt from the first
    input (Dense(10) learns its input size); `grad_req` is 'write', 'add'
    or 'null' (running statistics)."""

    def __init__(self, name: str = "param", shape=None, dtype: str = "float32", init=None,
                 grad_req: str = "write", lr_mult: float = 1.0, wd_mult: float = 1.0,
                 differentiable: bool = True):
        self.name = name
        self._shape = tuple(shape) if shape is not None else None
        self.dtype = dtype
        self.init = init
        self._grad_req = grad_req if differentiable else "null"
        self.lr_mult, self.wd_mult = lr_mult, wd_mult
        self._data: NDArray | None = None
        self._deferred = None  # (init, ctx) while the shape is incomplete

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape}, dtype={self.dtype})"

    @property
    def shape(self):
        return self._shape

    @shape.setter
    def shape(self, new):
        new = tuple(int(d) for d in new)
        if self._shape is not None:
            if len(new) != len(self._shape) or any(o not in (0, n) for o, n in zip(self._shape, new)):
                raise ValueError(f"{self.name}: shape {new} does not match the declared {self._shape}")
        self._shape = new

    @property
    def grad_req(self) -> str:
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req: str):
        if req not in ("write", "add", "null"):
            raise ValueError(f"{self.name}: grad_req must be 'write', 'add' or 'null', got {req!r}")
        self._grad_req = req
        if self._data is not None:
            self._attach()

    def _known(self) -> bool:
        return self._shape is not None and all(d > 0 for d in self._shape)

    def initialize(self, init=None, ctx=None, default_init=None, force_reinit: bool = False) -> None:
        from loom.gluon import init as initializers
        if self._data is not None and not force_reinit:
            return
        chosen = self.init if self.init is not None else (init if init is not None else default_init)
        chosen = initializers.create(chosen if chosen is not None else "uniform")
        if not self._known():
            self._deferred = (chosen, ctx)
            return
        self._finish(chosen, ctx)

    def _finish(self, init, ctx) -> None:
        from loom import nd
        from loom.context import cpu
        values = init(self.name, self._shape)
        self._data = nd.array(np.asarray(values, dtype=np.float32).astype(self.dtype)
                              if self.dtype != "bfloat16" else np.asarray(values, np.float32),
                              ctx=ctx if ctx is not None else cpu())
        if self.dtype == "bfloat16":
            self._data = self._data.astype("bfloat16")
        self._deferred = None
        self._attach()

    def _finish_deferred(self) -> None:
        if self._deferred is not None and self._known():
            self._finish(*self._deferred)

    def _attach(self) -> None:
        if self._grad_req != "null":
            self._data.attach_grad(self._grad_req)

    def data(self, ctx=None) -> NDArray:
        if self._data is None:
            if self._deferred is not None:
                raise DeferredInitializationError(
                    f"{self.name}: its shape {self._shape} is not known yet; call the block on data first")
            raise RuntimeError(f"{self.name} is not initialised: call block.initialize() first")
        return self._data

    def grad(self, ctx=None) -> NDArray:
        if self._grad_req == "null":
            raise RuntimeError(f"{self.name} has grad_req 'null': no gradient")
        return self.data().grad

    def set_data(self, value) -> None:
        from loom import nd
        value = value if isinstance(value, NDArray) else nd.array(np.asarray(value), dtype=self.dtype)
        if self._shape is not None and self._known() and tuple(value.shape) != self._shape:
            raise ValueError(f"{self.name}: set_data with shape {tuple(value.shape)}, expected {self._shape}")
        self._shape = tuple(value.shape)
        if self._data is None:
            self._data = value.astype(self.dtype) if value.dtype != self.dtype else nd.copy(value)
            self._attach()
        else:
            value.copyto(self._data)

    def zero_grad(self) -> None:
        if self._data is not None and self._grad_req != "null":
            from loom import nd
            nd.zeros_like(self._data).copyto(self.grad())

    def cast(self, dtype: str) -> None:
        self.dtype = dtype
        if self._data is not None:
            self._data = self._data.astype(dtype)
            self._attach()
