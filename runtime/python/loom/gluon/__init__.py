"""lm.gluon: blocks, layers, losses, initialisers and the Trainer, in MXNet
Gluon's names (code ports by renaming the import). A HybridBlock's
hybridize() traces its forward into a graph (lm.cached_op)."""
from loom.gluon import data, init, loss, lr_scheduler, metric, nn, rnn, utils  # noqa: F401
from loom.gluon.block import Block, HybridBlock, SymbolBlock  # noqa: F401
from loom.gluon.parameter import DeferredInitializationError, Parameter  # noqa: F401
from loom.gluon.trainer import Trainer  # noqa: F401
