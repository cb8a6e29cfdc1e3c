"""lm.autograd: recording operations and computing gradients (MXNet's names).

    x = lm.nd.array([1.0, 2.0]); x.attach_grad()
    with lm.autograd.record():
        y = (x * x).sum()
    y.backward()
    x.grad                      # [2., 4.]

Recording and training are per thread and off by default. Every operator
generated from opdefs/ records a node when recording is on and one of its
inputs requires grad; its backward is the `grad:` formula of its YAML, made
of differentiable operators, so `create_graph=True` gives gradients of
gradients.
"""
from __future__ import annotations

import contextlib

from loom import _C
from loom.gradcheck import GradcheckError, gradcheck, gradgradcheck

NDArray = _C.NDArray

__all__ = ["record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
           "set_recording", "set_training", "backward", "grad", "mark_variables",
           "gradcheck", "gradgradcheck", "GradcheckError", "Function"]


def is_recording() -> bool:
    """True inside `record()` (on this thread)."""
    return _C._is_recording()


def is_training() -> bool:
    """True inside `record()` or `train_mode()` (on this thread)."""
    return _C._is_training()


def set_recording(is_record: bool) -> bool:
    """Turns recording on or off for this thread; returns the previous state."""
    return _C._set_recording(bool(is_record))


def set_training(train: bool) -> bool:
    """Sets training mode for this thread; returns the previous state."""
    return _C._set_training(bool(train))


@contextlib.contextmanager
def _scope(recording: bool | None, training: bool | None):
    prev_rec = _C._set_recording(recording) if recording is not None else None
    prev_train = _C._set_training(training) if training is not None else None
    try:
        yield
    finally:
        if prev_rec is not None:
            _C._set_recording(prev_rec)
        if prev_train is not None:
            _C._set_training(prev_train)


def record(train_mode: bool = True):
    """Records operations for backward inside the block (and sets training
    mode unless train_mode=False)."""
    return _scope(True, train_mode)


def pause(train_mode: bool = False):
    """Stops recording inside the block (and sets predict mode unless train_mode=True)."""
    return _scope(False, train_mode)


def train_mode():
    """Training mode inside the block (dropout active, batch statistics), recording unchanged."""
    return _scope(None, True)


def predict_mode():
    """Predict mode inside the block, recording unchanged."""
    return _scope(None, False)


def _as_list(value):
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def backward(heads, head_grads=None, retain_graph: bool = False, train_mode: bool = True,
             create_graph: bool = False) -> None:
    """Gradients of `heads` (an array or a list) w.r.t. every leaf they depend
    on, written to the leaves' `.grad`. head_grads default to ones."""
    _C._backward(_as_list(heads), _as_list(head_grads), retain_graph, create_graph, train_mode)


def grad(heads, variables, head_grads=None, retain_graph: bool | None = None,
         create_graph: bool = False, train_mode: bool = True):
    """The gradients of `heads` w.r.t. `variables`, returned (in the shape of
    `variables`: one array or a list) without touching any `.grad`. A variable
    the heads do not depend on gets zeros. retain_graph defaults to
    create_graph, as in MXNet and PyTorch."""
    single = isinstance(variables, NDArray)
    var_list = _as_list(variables)
    if retain_graph is None:
        retain_graph = create_graph
    grads = _C._grad(_as_list(heads), var_list, _as_list(head_grads), retain_graph, create_graph, train_mode)
    from loom import nd
    grads = [g if g is not None else nd.zeros(v.shape, dtype=v.dtype, ctx=v.device)
             for g, v in zip(grads, var_list)]
    return grads[0] if single else grads


def mark_variables(variables, gradients=None, grad_reqs="write") -> None:
    """MXNet's spelling of attach_grad for a list of arrays. Gradients land in
    each array's own `.grad` buffer (passing other buffers is not supported)."""
    variables = _as_list(variables)
    if gradients is not None:
        raise NotImplementedError("mark_variables: custom gradient buffers are not supported; "
                                  "read each array's .grad after backward")
    reqs = [grad_reqs] * len(variables) if isinstance(grad_reqs, str) else list(grad_reqs)
    for v, r in zip(variables, reqs):
        v.attach_grad(r)


class Function:
    """A differentiable operation written in Python (MXNet's autograd.Function).

        class Sigmoid(lm.autograd.Function):
            def forward(self, x):
                y = 1 / (1 + (-x).exp())
                self.save_for_backward(y)
                return y

            def backward(self, dy):
                (y,) = self.saved_tensors
                return dy * y * (1 - y)

        y = Sigmoid()(x)

    forward runs without recording (its operations are not part of the
    graph); the outputs are recorded as one node whose gradient is
    `backward`, called with one gradient per output and returning one per
    NDArray input of forward (None for none). backward may use any loom
    operator; under create_graph=True those are recorded, so a Function
    written with loom ops has gradients of gradients — through the inputs it
    saved: arrays forward computed (its outputs included) are constants to
    the second derivative, so save inputs and recompute what backward needs
    when gradients of gradients matter. Use an instance once per call, as
    saved tensors live on it."""

    def __init__(self):
        self._saved = ()

    def save_for_backward(self, *arrays):
        self._saved = arrays

    @property
    def saved_tensors(self):
        return self._saved

    def forward(self, *inputs):
        raise NotImplementedError("Function.forward must be overridden")

    def backward(self, *output_grads):
        raise NotImplementedError("Function.backward must be overridden")

    def __call__(self, *inputs):
        with _scope(False, None):
            outputs = self.forward(*inputs)
        single = isinstance(outputs, NDArray)
        outs = [outputs] if single else list(outputs)
        if not all(isinstance(o, NDArray) for o in outs):
            raise TypeError(f"{type(self).__name__}.forward must return an NDArray or a tuple of them")
        arrays = [i for i in inputs if isinstance(i, NDArray)]
        if is_recording() and any(a.requires_grad for a in arrays):
            outs = _C._record_function(self, arrays, [o.detach() for o in outs])
        return outs[0] if single else tuple(outs)


class _Checkpoint(Function):
    """checkpoint's node: forward keeps only its inputs; backward runs fn
    again, recorded, from the same random state, and differentiates that."""

    def __init__(self, fn, num_inputs: int):
        super().__init__()
        self._fn, self._n = fn, num_inputs

    def forward(self, *arrays):
        from loom import random
        self._state, self._training = random.get_state(), is_training()
        self.save_for_backward(*arrays)
        return self._fn(*arrays[:self._n])

    def backward(self, *output_grads):
        from loom import random
        arrays = self.saved_tensors
        # Under create_graph the recomputation must hang off the real inputs
        # (and the gradients be recorded), or the second derivative loses
        # every term through this segment; a first-order backward works on
        # detached copies, so nothing it records outlives the call.
        higher_order = is_recording()
        if higher_order:
            inputs = list(arrays[:self._n])
        else:
            inputs = [a.detach() for a in arrays[:self._n]]
            for a in inputs:
                a.attach_grad()
        now = random.get_state()
        random.set_state(self._state)  # the same dropout masks as the forward drew
        try:
            with _scope(True, self._training):
                out = self._fn(*inputs)
        finally:
            random.set_state(now)
        outs = [out] if isinstance(out, NDArray) else list(out)
        everything = inputs + list(arrays[self._n:])
        wanted = [a for a in everything if a.requires_grad]
        computed = grad(outs, wanted, head_grads=list(output_grads), create_graph=higher_order)
        # The segment's recomputed arrays go once its gradients are done:
        # waiting here keeps the next segment's recomputation from running
        # beside this one, which would hold both segments' activations.
        for g in computed:
            if g is not None:
                g.wait_to_read()
        grads = iter(computed)
        return tuple(next(grads) if a.requires_grad else None for a in everything)


def checkpoint(fn, *inputs, params=None):
    """fn(*inputs), keeping none of its intermediate arrays for the
    backward: the backward runs fn again (recorded) and differentiates that
    (gradient checkpointing, MXNet's "mirror", Chen et al. 2016). Memory for
    the segment's activations is traded for one more forward.

    `params`: the arrays fn reads besides `inputs` that need gradients (a
    segment's weights); for a Gluon Block they are its parameters, found by
    themselves. Their gradients reach .grad as any other's. The recomputed
    forward draws the same random numbers (dropout masks) as the first.
    Layers that update state in their forward do it twice (BatchNorm's
    running statistics), as with torch.utils.checkpoint. Not recording, or
    inside a traced (hybridized) block, fn simply runs."""
    from loom import cached_op
    if params is None:
        from loom.gluon.block import Block
        params = ([p.data() for p in fn.collect_params().values() if p.grad_req != "null"]
                  if isinstance(fn, Block) else [])
    if not is_recording() or cached_op.is_tracing():
        return fn(*inputs)
    return _Checkpoint(fn, len(inputs))(*inputs, *params)


__all__.append("checkpoint")
