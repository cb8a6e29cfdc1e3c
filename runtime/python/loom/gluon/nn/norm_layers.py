"""Normalisation, embedding and parametric activation layers."""
from __future__ import annotations

from loom import nd
from loom.gluon.block import HybridBlock
from loom.gluon.parameter import Parameter


def _learn(block, params, size: int) -> None:
    for p in params:
        if p is not None and p.shape[0] == 0:
            p.shape = (size,)
            p._finish_deferred()


class LayerNorm(HybridBlock):
    """Normalises over one axis (MXNet's LayerNorm; default the last), with
    gamma and beta of that axis's size."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 in_channels: int = 0):
        super().__init__()
        self._axis, self._eps = axis, epsilon
        self.gamma = Parameter("gamma", shape=(in_channels,), init="ones") if scale else None
        self.beta = Parameter("beta", shape=(in_channels,), init="zeros") if center else None

    def forward(self, x):
        _learn(self, (self.gamma, self.beta), x.shape[self._axis])
        # nd.layer_norm normalises from `axis` to the end (torch's
        # normalized_shape); MXNet's axis is that one dim alone, so it goes
        # last for the op and back after.
        axis = self._axis % x.ndim
        if axis != x.ndim - 1:
            x = nd.swapaxes(x, axis, x.ndim - 1)
        y = nd.layer_norm(x, self.gamma.data() if self.gamma else None, self.beta.data() if self.beta else None,
                          axis=-1, eps=self._eps)
        return y if axis == x.ndim - 1 else nd.swapaxes(y, axis, x.ndim - 1)


class GroupNorm(HybridBlock):
    def __init__(self, num_groups: int = 1, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 in_channels: int = 0):
        super().__init__()
        self._groups, self._eps = num_groups, epsilon
        self.gamma = Parameter("gamma", shape=(in_channels,), init="ones") if scale else None
        self.beta = Parameter("beta", shape=(in_channels,), init="zeros") if center else None

    def forward(self, x):
        _learn(self, (self.gamma, self.beta), x.shape[1])
        return nd.group_norm(x, self.gamma.data() if self.gamma else None, self.beta.data() if self.beta else None,
                             num_groups=self._groups, eps=self._eps)


class InstanceNorm(HybridBlock):
    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True, in_channels: int = 0):
        super().__init__()
        self._eps = epsilon
        self.gamma = Parameter("gamma", shape=(in_channels,), init="ones") if scale else None
        self.beta = Parameter("beta", shape=(in_channels,), init="zeros") if center else None

    def forward(self, x):
        _learn(self, (self.gamma, self.beta), x.shape[1])
        # group_norm with a group per channel: nd.instance_norm refuses one
        # spatial element (as torch does), where MXNet's layer gives beta
        return nd.group_norm(x, self.gamma.data() if self.gamma else None, self.beta.data() if self.beta else None,
                             num_groups=x.shape[1], eps=self._eps)


class Embedding(HybridBlock):
    """Rows of a (input_dim, output_dim) table picked by integer indices."""

    def __init__(self, input_dim: int, output_dim: int, dtype: str = "float32", weight_initializer=None):
        super().__init__()
        self.weight = Parameter("weight", shape=(input_dim, output_dim), dtype=dtype,
                                init=weight_initializer if weight_initializer is not None else "normal")

    def forward(self, x):
        if x.dtype != "int64":
            x = x.astype("int64")
        return nd.embedding(x, self.weight.data())


class PReLU(HybridBlock):
    """max(x, 0) + alpha * min(x, 0) with a learnt alpha (one, or one per channel: in_channels)."""

    def __init__(self, alpha_initializer=0.25, in_channels: int = 1):
        super().__init__()
        from loom.gluon import init
        self.alpha = Parameter("alpha", shape=(in_channels,), init=init.Constant(alpha_initializer))

    def forward(self, x):
        a = self.alpha.data()
        if a.shape[0] > 1 and x.ndim > 2:
            a = a.reshape(a.shape[0], *([1] * (x.ndim - 2)))
        return nd.relu(x) - a * nd.relu(-x)


class GELU(HybridBlock):
    def __init__(self, approximation: str = "erf"):
        super().__init__()
        self._approx = approximation == "tanh"

    def forward(self, x):
        return nd.gelu(x, approximate=self._approx)


class SiLU(HybridBlock):
    def forward(self, x):
        return nd.silu(x)


Swish = SiLU
