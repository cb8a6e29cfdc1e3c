"""lm.gluon.nn: layers, in MXNet Gluon's names."""
from loom.gluon.block import Block, HybridBlock, SymbolBlock  # noqa: F401
from loom.gluon.nn.attention_layers import MultiHeadAttention, TransformerEncoderLayer  # noqa: F401
from loom.gluon.nn.basic_layers import (Activation, BatchNorm, Dense, Dropout, Flatten, HybridLambda,  # noqa: F401
                                        HybridSequential, Lambda, LeakyReLU, Sequential)
from loom.gluon.nn.conv_layers import (AvgPool2D, Conv1D, Conv2D, Conv2DTranspose, Conv3D,  # noqa: F401
                                       GlobalAvgPool2D, GlobalMaxPool2D, MaxPool1D, MaxPool2D)
from loom.gluon.nn.norm_layers import (GELU, Embedding, GroupNorm, InstanceNorm, LayerNorm, PReLU,  # noqa: F401
                                       SiLU, Swish)
