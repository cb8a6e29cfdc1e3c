"""lm.gluon.rnn: recurrent layers and cells."""
from loom.gluon.nn.rnn_layers import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
