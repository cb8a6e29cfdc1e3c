"""Multi-head attention and a Transformer encoder layer (batch-first:
(N, T, C)), over the fused scaled_dot_product_attention op."""
from __future__ import annotations

from loom import nd
from loom.gluon.block import HybridBlock
from loom.gluon.nn.basic_layers import Dense, Dropout
from loom.gluon.nn.norm_layers import LayerNorm


class MultiHeadAttention(HybridBlock):
    """Queries, keys and values projected to num_heads heads of
    units / num_heads each, attended, and projected back."""

    def __init__(self, units: int, num_heads: int, use_bias: bool = True, in_units: int = 0):
        super().__init__()
        if units % num_heads:
            raise ValueError(f"MultiHeadAttention: units {units} must divide by num_heads {num_heads}")
        self._units, self._heads = units, num_heads
        self.query = Dense(units, use_bias=use_bias, flatten=False, in_units=in_units)
        self.key = Dense(units, use_bias=use_bias, flatten=False, in_units=in_units)
        self.value = Dense(units, use_bias=use_bias, flatten=False, in_units=in_units)
        self.out = Dense(units, use_bias=use_bias, flatten=False, in_units=units)

    def _split(self, x):
        n, t, _ = x.shape
        return nd.swapaxes(x.reshape(n, t, self._heads, self._units // self._heads), 1, 2)

    def forward(self, q, k=None, v=None, valid_length=None, causal: bool = False):
        k = q if k is None else k
        v = k if v is None else v
        for name, a in (("query", q), ("key", k), ("value", v)):
            if a.ndim != 3:
                raise ValueError(f"MultiHeadAttention: the {name} must be 3-D (batch, length, features), got shape "
                                 f"{tuple(a.shape)}")
        heads = nd.scaled_dot_product_attention(self._split(self.query(q)), self._split(self.key(k)),
                                                self._split(self.value(v)), valid_length, causal=causal)
        n, _, t, _ = heads.shape
        return self.out(nd.swapaxes(heads, 1, 2).reshape(n, t, self._units))


class TransformerEncoderLayer(HybridBlock):
    """Post-norm encoder layer: x + attention, then x + feed-forward (gelu), each followed by LayerNorm."""

    def __init__(self, units: int, num_heads: int, hidden_size: int, dropout: float = 0.0):
        super().__init__()
        self.attention = MultiHeadAttention(units, num_heads, in_units=units)
        self.norm1 = LayerNorm(in_channels=units)
        self.ffn1 = Dense(hidden_size, flatten=False, in_units=units)
        self.ffn2 = Dense(units, flatten=False, in_units=hidden_size)
        self.norm2 = LayerNorm(in_channels=units)
        self.dropout = Dropout(dropout)

    def forward(self, x, valid_length=None):
        x = self.norm1(x + self.dropout(self.attention(x, valid_length=valid_length)))
        return self.norm2(x + self.dropout(self.ffn2(nd.gelu(self.ffn1(x)))))
