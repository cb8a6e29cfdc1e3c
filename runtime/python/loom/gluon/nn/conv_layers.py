"""Convolution and pooling layers (channels first: NCW, NCHW, NCDHW)."""
from __future__ import annotations

from loom import nd
from loom.gluon.block import HybridBlock
from loom.gluon.nn.basic_layers import activation
from loom.gluon.parameter import Parameter


def _tuple(v, n: int) -> list[int]:
    return [int(v)] * n if isinstance(v, int) else [int(x) for x in v]


class _Conv(HybridBlock):
    def __init__(self, dims: int, channels: int, kernel_size, strides=1, padding=0, dilation=1, groups: int = 1,
                 activation_name=None, use_bias: bool = True, weight_initializer=None, bias_initializer="zeros",
                 in_channels: int = 0, transpose: bool = False, output_padding=0):
        super().__init__()
        name = f"Conv{dims}D" + ("Transpose" if transpose else "")
        # the weight holds channels / groups per group: a remainder was
        # dropped silently (5 channels in 2 groups gave 4)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
        for what, count in (("channels", channels), ("in_channels", in_channels)):
            if count % groups:
                raise ValueError(f"{name}: {what} ({count}) must be divisible by groups ({groups})")
        self._name = name
        self._dims, self._channels, self._groups, self._transpose = dims, channels, groups, transpose
        self._kernel = _tuple(kernel_size, dims)
        self._stride, self._pad, self._dilation = _tuple(strides, dims), _tuple(padding, dims), _tuple(dilation, dims)
        self._output_padding = _tuple(output_padding, dims)
        self._act = activation(activation_name)
        shape = ((in_channels, channels // groups) if transpose else (channels, in_channels // groups if in_channels
                                                                       else 0)) + tuple(self._kernel)
        self.weight = Parameter("weight", shape=shape, init=weight_initializer)
        self.bias = Parameter("bias", shape=(channels,), init=bias_initializer) if use_bias else None

    def forward(self, x):
        if 0 in self.weight.shape:
            cin = x.shape[1]
            if cin % self._groups:
                raise ValueError(f"{self._name}: the input's {cin} channels (x {tuple(x.shape)}) must be divisible "
                                 f"by groups ({self._groups})")
            self.weight.shape = ((cin, self._channels // self._groups) if self._transpose
                                 else (self._channels, cin // self._groups)) + tuple(self._kernel)
            self.weight._finish_deferred()
        b = self.bias.data() if self.bias is not None else None
        if self._transpose:
            y = nd.deconvolution(x, self.weight.data(), b, stride=self._stride, padding=self._pad,
                                 output_padding=self._output_padding, dilation=self._dilation, groups=self._groups)
        else:
            y = nd.convolution(x, self.weight.data(), b, stride=self._stride, padding=self._pad,
                               dilation=self._dilation, groups=self._groups)
        return self._act(y) if self._act is not None else y


def _conv_class(dims: int):
    class Conv(_Conv):
        def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1, activation=None,
                     use_bias=True, weight_initializer=None, bias_initializer="zeros", in_channels=0):
            super().__init__(dims, channels, kernel_size, strides, padding, dilation, groups, activation, use_bias,
                             weight_initializer, bias_initializer, in_channels)
    Conv.__name__ = Conv.__qualname__ = f"Conv{dims}D"
    Conv.__doc__ = f"{dims}-D convolution over channels-first input; in_channels learnt from the first input when 0."
    return Conv


Conv1D, Conv2D, Conv3D = _conv_class(1), _conv_class(2), _conv_class(3)


def _conv_transpose_class(dims: int):
    class ConvTranspose(_Conv):
        def __init__(self, channels, kernel_size, strides=1, padding=0, output_padding=0, dilation=1, groups=1,
                     activation=None, use_bias=True, weight_initializer=None, bias_initializer="zeros",
                     in_channels=0):
            super().__init__(dims, channels, kernel_size, strides, padding, dilation, groups, activation, use_bias,
                             weight_initializer, bias_initializer, in_channels, transpose=True,
                             output_padding=output_padding)
    ConvTranspose.__name__ = ConvTranspose.__qualname__ = f"Conv{dims}DTranspose"
    ConvTranspose.__doc__ = (f"{dims}-D transposed convolution (deconvolution) over channels-first input; weight "
                             f"(in_channels, channels / groups, *kernel), in_channels learnt when 0.")
    return ConvTranspose


Conv1DTranspose, Conv2DTranspose, Conv3DTranspose = (_conv_transpose_class(1), _conv_transpose_class(2),
                                                     _conv_transpose_class(3))


class _Pool(HybridBlock):
    def __init__(self, dims: int, kind: str, pool_size, strides, padding, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        self._kind, self._dims = kind, dims
        self._size = _tuple(pool_size, dims)
        self._stride = _tuple(strides if strides is not None else pool_size, dims)
        self._pad = _tuple(padding, dims)
        self._ceil, self._count_pad = ceil_mode, count_include_pad

    def forward(self, x):
        if self._kind == "max":
            return nd.max_pool(x, kernel=self._size, stride=self._stride, padding=self._pad, ceil_mode=self._ceil)
        return nd.avg_pool(x, kernel=self._size, stride=self._stride, padding=self._pad, ceil_mode=self._ceil,
                           count_include_pad=self._count_pad)


def _pool_class(dims: int, kind: str):
    if kind == "max":
        def __init__(self, pool_size=2, strides=None, padding=0, ceil_mode=False):
            _Pool.__init__(self, dims, "max", pool_size, strides, padding, ceil_mode)
    else:
        def __init__(self, pool_size=2, strides=None, padding=0, ceil_mode=False, count_include_pad=True):
            _Pool.__init__(self, dims, "avg", pool_size, strides, padding, ceil_mode, count_include_pad)
    name = f"{'Max' if kind == 'max' else 'Avg'}Pool{dims}D"
    return type(name, (_Pool,), {"__init__": __init__, "__qualname__": name,
                                 "__doc__": f"{dims}-D {kind} pooling over channels-first input (stride: the "
                                            f"window by default)."})


MaxPool1D, MaxPool2D, MaxPool3D = _pool_class(1, "max"), _pool_class(2, "max"), _pool_class(3, "max")
AvgPool1D, AvgPool2D, AvgPool3D = _pool_class(1, "avg"), _pool_class(2, "avg"), _pool_class(3, "avg")


def _global_pool_class(dims: int, kind: str):
    op = nd.adaptive_max_pool if kind == "max" else nd.adaptive_avg_pool

    def forward(self, x):
        return op(x, [1] * dims)
    name = f"Global{'Max' if kind == 'max' else 'Avg'}Pool{dims}D"
    return type(name, (HybridBlock,), {"forward": forward, "__qualname__": name,
                                       "__doc__": f"{kind} over all {dims} spatial dims, kept as size 1."})


GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (_global_pool_class(1, "max"), _global_pool_class(2, "max"),
                                                     _global_pool_class(3, "max"))
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (_global_pool_class(1, "avg"), _global_pool_class(2, "avg"),
                                                     _global_pool_class(3, "avg"))
