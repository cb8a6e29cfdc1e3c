"""Basic layers: containers, Dense, Activation, Dropout, BatchNorm, Flatten, Lambda."""
from __future__ import annotations

from loom import nd
from loom.gluon.block import Block, HybridBlock
from loom.gluon.parameter import Parameter

_ACTIVATIONS = {"relu": nd.relu, "sigmoid": nd.sigmoid, "tanh": nd.tanh, "softrelu": nd.softplus,
                "gelu": nd.gelu, "silu": nd.silu, "swish": nd.silu}


def activation(name):
    if name is None:
        return None
    if callable(name):
        return name
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (one of {sorted(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]


class Sequential(Block):
    """Children run one after another."""

    def __init__(self):
        super().__init__()

    def add(self, *blocks) -> None:
        for b in blocks:
            self.register_child(b)

    def forward(self, x):
        for child in self._children.values():
            x = child(x)
        return x

    def __getitem__(self, index):
        children = list(self._children.values())
        if isinstance(index, slice):
            seq = type(self)()
            seq.add(*children[index])
            return seq
        return children[index]

    def __len__(self) -> int:
        return len(self._children)


class HybridSequential(HybridBlock, Sequential):
    """A Sequential that hybridizes as a whole (one graph for all its children)."""

    def __init__(self):
        HybridBlock.__init__(self)

    def hybridize(self, active=True, **kwargs):
        HybridBlock.hybridize(self, active, **kwargs)
        # The children run inside this block's graph; their own caches stay off.
        for child in self._children.values():
            child.hybridize(False)


class Dense(HybridBlock):
    """y = activation(x W^T + b); W is (units, in_units), learnt from the
    first input when in_units is 0. flatten=True treats all but the first
    dim of x as the features."""

    def __init__(self, units: int, activation=None, use_bias: bool = True, flatten: bool = True,
                 dtype: str = "float32", weight_initializer=None, bias_initializer="zeros", in_units: int = 0):
        super().__init__()
        self._units, self._flatten = units, flatten
        self._act = _act_fn(activation)
        self.weight = Parameter("weight", shape=(units, in_units), dtype=dtype, init=weight_initializer)
        self.bias = Parameter("bias", shape=(units,), dtype=dtype, init=bias_initializer) if use_bias else None

    def forward(self, x):
        if self._flatten and x.ndim != 2:
            x = nd.flatten(x)  # not reshape(batch, -1): a traced graph would keep that batch size
        if self.weight.shape[1] == 0:
            self.weight.shape = (self._units, x.shape[-1])
            self.weight._finish_deferred()
        y = nd.linear(x, self.weight.data(), self.bias.data() if self.bias is not None else None)
        return self._act(y) if self._act is not None else y

    def __repr__(self):
        return f"Dense({self.weight.shape[1] or None} -> {self._units})"


def _act_fn(name):
    return activation(name)


class Activation(HybridBlock):
    def __init__(self, activation_name: str):
        super().__init__()
        self._name = activation_name
        self._fn = activation(activation_name)

    def forward(self, x):
        return self._fn(x)

    def __repr__(self):
        return f"Activation({self._name})"


class LeakyReLU(HybridBlock):
    def __init__(self, alpha: float):
        super().__init__()
        self._alpha = alpha

    def forward(self, x):
        return nd.leaky_relu(x, self._alpha)


class Flatten(HybridBlock):
    """(batch, ...) -> (batch, everything else)."""

    def forward(self, x):
        # the flatten op, not reshape(x.shape[0], -1): an exported graph
        # would have kept the traced batch size
        return nd.flatten(x)


class Dropout(HybridBlock):
    """Zeroes each element with probability `rate` in training (the
    identity otherwise); see lm.nd.dropout. Hybridized, the mask is a graph
    input drawn afresh on every run."""

    def __init__(self, rate: float):
        super().__init__()
        self._rate = rate

    def forward(self, x):
        return nd.dropout(x, self._rate)


def _norm_dtype(dtype: str) -> str:
    """Normalisation parameters and statistics of half-precision layers stay
    float32 (MXNet's BatchNorm.cast does the same; batch_norm takes half x
    with float32 statistics, not half statistics)."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype


class BatchNorm(HybridBlock):
    """Batch normalisation over axis 1 with running statistics (MXNet's
    momentum: running = momentum * running + (1 - momentum) * batch)."""

    def __init__(self, axis: int = 1, momentum: float = 0.9, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = True, in_channels: int = 0, dtype: str = "float32"):
        super().__init__()
        if axis != 1:
            raise NotImplementedError("BatchNorm: only axis=1 (channels first) is supported")
        self._momentum, self._eps = momentum, epsilon
        c, dtype = (in_channels,), _norm_dtype(dtype)
        self.gamma = Parameter("gamma", shape=c, dtype=dtype, init="ones", grad_req="write" if scale else "null")
        self.beta = Parameter("beta", shape=c, dtype=dtype, init="zeros", grad_req="write" if center else "null")
        self.running_mean = Parameter("running_mean", shape=c, dtype=dtype, init="zeros", grad_req="null")
        self.running_var = Parameter("running_var", shape=c, dtype=dtype, init="ones", grad_req="null")

    def forward(self, x):
        from loom import autograd
        if self.gamma.shape[0] == 0:
            for p in (self.gamma, self.beta, self.running_mean, self.running_var):
                p.shape = (x.shape[1],)
                p._finish_deferred()
        y = nd.batch_norm(x, self.gamma.data(), self.beta.data(), self.running_mean.data(),
                          self.running_var.data(), training=autograd.is_training(),
                          momentum=1.0 - self._momentum, eps=self._eps)
        # half x with float32 statistics promotes to float32; the layer
        # gives x's precision back, as MXNet's does
        return y if y.dtype == x.dtype else y.astype(x.dtype)

    def cast(self, dtype: str) -> None:
        super().cast(_norm_dtype(dtype))


class Lambda(Block):
    def __init__(self, function):
        super().__init__()
        self._fn = function

    def forward(self, *args):
        return self._fn(*args)


class HybridLambda(HybridBlock):
    def __init__(self, function):
        super().__init__()
        self._fn = function

    def forward(self, *args):
        return self._fn(*args)
