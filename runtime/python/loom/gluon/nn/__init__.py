"""lm.gluon.nn: layers, in MXNet Gluon's names."""
from loom.gluon.block import Block, HybridBlock, SymbolBlock  # noqa: F401
from loom.gluon.nn.attention_layers import MultiHeadAttention, TransformerEncoderLayer  # noqa: F401
from loom.gluon.nn.basic_layers import (Activation, BatchNorm, Dense, Dropout, Flatten, HybridLambda,  # noqa: F401
                                        HybridSequential, Lambda, LeakyReLU, Sequential)
from loom.gluon.nn.conv_layers import (AvgPool1D, AvgPool2D, AvgPool3D, Conv1D, Conv1DTranspose,  # noqa: F401
                                       Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose, GlobalAvgPool1D,
                                       GlobalAvgPool2D, GlobalAvgPool3D, GlobalMaxPool1D, GlobalMaxPool2D,
                                       GlobalMaxPool3D, MaxPool1D, MaxPool2D, MaxPool3D)
from loom.gluon.nn.norm_layers import (GELU, Embedding, GroupNorm, InstanceNorm, LayerNorm, PReLU,  # noqa: F401
                                       SiLU, Swish)
