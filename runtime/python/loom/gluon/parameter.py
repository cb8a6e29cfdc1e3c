"""Parameters: named arrays a Block owns, with their gradients, initialised
when their shape is known (Gluon's deferred initialisation)."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from loom import _C

NDArray = _C.NDArray

# The device a block is running on: Block.__call__ sets it from its first
# array input, so a layer's `self.weight.data()` picks the copy on that
# device without every layer passing it (MXNet's hybrid_forward does the
# same by handing each call its context's parameters).
_running = threading.local()


@contextmanager
def running_on(device):
    previous = getattr(_running, "device", None)
    _running.device = device
    try:
        yield
    finally:
        _running.device = previous


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
        self._data: NDArray | None = None   # the copy on the first device
        self._copies: list = []               # one per device, _data first
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
        from loom.gluon import init as initializers
        # The parameter's own initializer (Parameter(init=...), a layer's
        # bias_initializer) applies as given, as MXNet's does; a block-wide
        # one keeps Gluon's name rules (biases and betas 0, gammas 1).
        own = self.init is not None and type(init).draw is not initializers.Initializer.draw
        values = init.draw(self._shape) if own else init(self.name, self._shape)
        host = nd.array(np.asarray(values, dtype=np.float32).astype(self.dtype)
                        if self.dtype != "bfloat16" else np.asarray(values, np.float32))
        if self.dtype == "bfloat16":
            host = host.astype("bfloat16")
        self._set_copies([nd.copy(host.as_in_context(d)) for d in _devices(ctx)])
        self._deferred = None

    def _set_copies(self, copies: list) -> None:
        self._copies = copies
        self._data = copies[0]
        self._attach()

    def _finish_deferred(self) -> None:
        if self._deferred is not None and self._known():
            self._finish(*self._deferred)

    def _attach(self) -> None:
        if self._grad_req != "null":
            for copy in self._copies:
                copy.attach_grad(self._grad_req)

    def _check_ready(self) -> None:
        if self._data is None:
            if self._deferred is not None:
                raise DeferredInitializationError(
                    f"{self.name}: its shape {self._shape} is not known yet; call the block on data first")
            raise RuntimeError(f"{self.name} is not initialised: call block.initialize() first")

    def data(self, ctx=None) -> NDArray:
        """The copy on `ctx`; without one, the copy on the device the block
        is running on, or the first copy."""
        self._check_ready()
        if len(self._copies) == 1 and ctx is None:
            return self._data
        want = ctx if ctx is not None else getattr(_running, "device", None)
        if want is None:
            return self._data
        for copy in self._copies:
            if copy.device == want:
                return copy
        raise RuntimeError(f"{self.name} was initialised on {self.list_ctx()}, not on {want}: "
                           f"pass ctx=[...] to initialize() or call reset_ctx()")

    def list_data(self) -> list:
        """Every copy, in the order of list_ctx()."""
        self._check_ready()
        return list(self._copies)

    def list_ctx(self) -> list:
        if self._data is None and self._deferred is not None:
            return _devices(self._deferred[1])
        self._check_ready()
        return [c.device for c in self._copies]

    def grad(self, ctx=None) -> NDArray:
        if self._grad_req == "null":
            raise RuntimeError(f"{self.name} has grad_req 'null': no gradient")
        return self.data(ctx).grad

    def list_grad(self) -> list:
        if self._grad_req == "null":
            raise RuntimeError(f"{self.name} has grad_req 'null': no gradient")
        return [c.grad for c in self.list_data()]

    def reset_ctx(self, ctx) -> None:
        """Moves the parameter to the device(s) `ctx`, keeping its value."""
        from loom import nd
        if self._data is None:
            if self._deferred is not None:
                self._deferred = (self._deferred[0], ctx)
                return
            self._check_ready()
        self._set_copies([nd.copy(self._data.as_in_context(d)) for d in _devices(ctx)])

    def accepts_shape(self, shape) -> bool:
        """Whether an array of `shape` fits: same rank, and equal in every
        dim already known (0 marks a dim deferred initialisation will learn)."""
        if self._shape is None:
            return True
        shape = tuple(shape)
        return len(shape) == len(self._shape) and all(k == 0 or k == d for k, d in zip(self._shape, shape))

    def set_data(self, value) -> None:
        from loom import nd
        value = value if isinstance(value, NDArray) else nd.array(np.asarray(value), dtype=self.dtype)
        if not self.accepts_shape(value.shape):
            raise ValueError(f"{self.name}: set_data with shape {tuple(value.shape)}, expected {self._shape} "
                             "(0: not known yet)")
        self._shape = tuple(value.shape)
        if self._data is None:
            value = value.astype(self.dtype) if value.dtype != self.dtype else value
            devices = _devices(self._deferred[1]) if self._deferred is not None else [value.device]
            self._set_copies([nd.copy(value.as_in_context(d)) for d in devices])
            self._deferred = None
        else:
            for copy in self._copies:
                value.as_in_context(copy.device).copyto(copy)

    def zero_grad(self) -> None:
        if self._data is not None and self._grad_req != "null":
            from loom import nd
            for g in self.list_grad():
                nd.zeros_like(g).copyto(g)

    def cast(self, dtype: str) -> None:
        self.dtype = dtype
        if self._data is not None:
            self._set_copies([c.astype(dtype) for c in self._copies])


def _devices(ctx) -> list:
    """initialize()'s ctx: None (the host), one device or a list of them."""
    from loom.context import cpu
    if ctx is None:
        return [cpu()]
    devices = list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]
    if not devices:
        raise ValueError("Parameter: ctx is an empty list; give at least one device")
    if len(set(map(str, devices))) != len(devices):
        raise ValueError(f"Parameter: ctx lists a device twice: {devices}")
    return devices
