"""Recurrent layers (over the fused lstm_layer / gru_layer / rnn_layer ops)
and cells (one step, for custom loops). Layout 'TNC' (time, batch,
features) or 'NTC'; weights per layer and direction as PyTorch's."""
from __future__ import annotations

from loom import nd
from loom.gluon.block import HybridBlock
from loom.gluon.parameter import Parameter

_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


class _RNNLayer(HybridBlock):
    def __init__(self, mode: str, hidden_size: int, num_layers: int, layout: str, dropout: float,
                 bidirectional: bool, input_size: int, i2h_weight_initializer=None, h2h_weight_initializer=None,
                 i2h_bias_initializer="zeros", h2h_bias_initializer="zeros", dtype: str = "float32"):
        super().__init__()
        name = type(self).__name__
        if layout not in ("TNC", "NTC"):
            raise ValueError(f"{name}: layout must be 'TNC' or 'NTC', got {layout!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self._mode, self._hidden, self._layers, self._layout = mode, hidden_size, num_layers, layout
        self._dropout = float(dropout)
        self._dirs = 2 if bidirectional else 1
        gates = _GATES[mode] * hidden_size
        from loom.gluon import init
        scale = init.Uniform(1.0 / hidden_size ** 0.5)
        self._names = []
        for layer in range(num_layers):
            for d in range(self._dirs):
                tag = f"l{layer}" + ("_reverse" if d else "")
                in_size = input_size if layer == 0 else hidden_size * self._dirs
                for kind, shape, ini in (("i2h_weight", (gates, in_size), i2h_weight_initializer),
                                         ("h2h_weight", (gates, hidden_size), h2h_weight_initializer),
                                         ("i2h_bias", (gates,), i2h_bias_initializer),
                                         ("h2h_bias", (gates,), h2h_bias_initializer)):
                    param = f"{tag}_{kind}"
                    setattr(self, param, Parameter(param, shape=shape, dtype=dtype,
                                                   init=ini if ini is not None else scale))
                self._names.append(tag)

    def forward(self, x, states=None):
        if x.ndim != 3:
            dims = "time, batch" if self._layout == "TNC" else "batch, time"
            raise ValueError(f"{type(self).__name__}: x must be 3-D ({dims}, features) for layout "
                             f"{self._layout!r}, got shape {tuple(x.shape)}")
        if self._layout == "NTC":
            x = nd.swapaxes(x, 0, 1)
        for tag in self._names[:self._dirs]:  # layer 0 learns its input size from x
            first = getattr(self, f"{tag}_i2h_weight")
            if first.shape[1] == 0:
                first.shape = (first.shape[0], x.shape[2])
                first._finish_deferred()
        weights = [tuple(getattr(self, f"{t}_{k}").data() for k in ("i2h_weight", "h2h_weight", "i2h_bias",
                                                                   "h2h_bias")) for t in self._names]
        states = states if isinstance(states, (list, tuple)) else ([states] if states is not None else [])
        if self._mode == "lstm":
            h0, c0 = (states + [None, None])[:2]
            y, (h, c) = nd.lstm(x, weights, h0, c0, self._layers, self._dirs == 2, dropout=self._dropout)
            new_states = [h, c]
        elif self._mode == "gru":
            y, h = nd.gru(x, weights, states[0] if states else None, self._layers, self._dirs == 2,
                          dropout=self._dropout)
            new_states = [h]
        else:
            y, h = nd.rnn(x, weights, states[0] if states else None, self._layers, self._dirs == 2,
                          nonlinearity=self._mode[4:], dropout=self._dropout)
            new_states = [h]
        if self._layout == "NTC":
            y = nd.swapaxes(y, 0, 1)
        # MXNet's contract: called without states, a layer returns its output
        # alone; called with states, the output and the new states.
        return y if not states else (y, new_states)

    def begin_state(self, batch_size: int, ctx=None) -> list:
        """Zero initial states, each (layers * directions, batch, hidden):
        [h, c] for an LSTM, [h] otherwise."""
        shape = (self._layers * self._dirs, batch_size, self._hidden)
        dtype = getattr(self, f"{self._names[0]}_h2h_weight").dtype  # the layer's precision (dtype=, cast)
        return [nd.zeros(shape, dtype=dtype, ctx=ctx) for _ in range(2 if self._mode == "lstm" else 1)]


# The constructors take MXNet Gluon's arguments in MXNet's order, so that
# positional calls port: rnn.LSTM(512, 2, "TNC", 0.2) has dropout 0.2
# between its layers (in training), as there.
def _gated_layer_class(mode: str, name: str):
    class Layer(_RNNLayer):
        def __init__(self, hidden_size, num_layers=1, layout="TNC", dropout=0.0, bidirectional=False, input_size=0,
                     i2h_weight_initializer=None, h2h_weight_initializer=None, i2h_bias_initializer="zeros",
                     h2h_bias_initializer="zeros", dtype="float32"):
            super().__init__(mode, hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                             i2h_weight_initializer, h2h_weight_initializer, i2h_bias_initializer,
                             h2h_bias_initializer, dtype)
    Layer.__name__ = Layer.__qualname__ = name
    Layer.__doc__ = f"A multi-layer {name} (MXNet Gluon's rnn.{name}) over the fused {mode}_layer op."
    return Layer


LSTM, GRU = _gated_layer_class("lstm", "LSTM"), _gated_layer_class("gru", "GRU")


class RNN(_RNNLayer):
    """An Elman RNN; MXNet's default activation, 'relu' (torch's nn.RNN
    defaults to 'tanh')."""

    def __init__(self, hidden_size, num_layers=1, activation="relu", layout="TNC", dropout=0.0, bidirectional=False,
                 i2h_weight_initializer=None, h2h_weight_initializer=None, i2h_bias_initializer="zeros",
                 h2h_bias_initializer="zeros", input_size=0, dtype="float32"):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"RNN: activation must be 'tanh' or 'relu', got {activation!r}")
        super().__init__(f"rnn_{activation}", hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                         i2h_weight_initializer, h2h_weight_initializer, i2h_bias_initializer, h2h_bias_initializer,
                         dtype)


class _Cell(HybridBlock):
    """One time step: forward(x (N, C), states) -> (output, new states)."""

    def __init__(self, layer_cls, hidden_size: int, input_size: int, **kwargs):
        super().__init__()
        self.layer = layer_cls(hidden_size, input_size=input_size, **kwargs)

    def forward(self, x, states):
        y, new = self.layer(nd.expand_dims(x, 0), [nd.expand_dims(s, 0) for s in states])
        return nd.squeeze(y, 0), [nd.squeeze(s, 0) for s in new]

    def begin_state(self, batch_size: int, ctx=None) -> list:
        return [nd.squeeze(s, 0) for s in self.layer.begin_state(batch_size, ctx)]


class LSTMCell(_Cell):
    def __init__(self, hidden_size: int, input_size: int = 0):
        super().__init__(LSTM, hidden_size, input_size)


class GRUCell(_Cell):
    def __init__(self, hidden_size: int, input_size: int = 0):
        super().__init__(GRU, hidden_size, input_size)


class RNNCell(_Cell):
    def __init__(self, hidden_size: int, activation: str = "tanh", input_size: int = 0):
        # MXNet's RNNCell defaults to tanh (its RNN layer to relu)
        super().__init__(RNN, hidden_size, input_size, activation=activation)
