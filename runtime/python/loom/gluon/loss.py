"""Losses: each returns one value per sample (the mean over the other
dims), times `sample_weight` when given, as MXNet Gluon's do."""
from __future__ import annotations

from loom import nd
from loom.gluon.block import HybridBlock


def _per_sample(loss, sample_weight, weight: float):
    if sample_weight is not None:
        loss = loss * sample_weight
    if weight != 1.0:
        loss = loss * weight
    if loss.ndim > 1:
        loss = nd.mean(loss, dims=list(range(1, loss.ndim)))
    return loss


class Loss(HybridBlock):
    def __init__(self, weight: float = 1.0, batch_axis: int = 0):
        super().__init__()
        if batch_axis != 0:
            raise NotImplementedError("losses take the batch on axis 0")
        self._weight = weight


class SoftmaxCrossEntropyLoss(Loss):
    """-log softmax(pred)[label]: sparse_label=True takes class indices
    (int64), False takes probabilities; from_logits=True means pred already
    holds log-probabilities."""

    def __init__(self, axis: int = -1, sparse_label: bool = True, from_logits: bool = False,
                 weight: float = 1.0, batch_axis: int = 0):
        super().__init__(weight, batch_axis)
        self._axis, self._sparse, self._from_logits = axis, sparse_label, from_logits

    def forward(self, pred, label, sample_weight=None):
        if self._sparse and not self._from_logits:
            if label.dtype != "int64":
                label = label.astype("int64")
            loss = nd.softmax_cross_entropy(pred, label, dim=self._axis)
        else:
            logp = pred if self._from_logits else nd.log_softmax(pred, dim=self._axis)
            if self._sparse:
                loss = -nd.gather(logp, nd.expand_dims(label.astype("int64"), self._axis), dim=self._axis)
                loss = nd.squeeze(loss, self._axis)
            else:
                loss = -nd.sum(logp * label, dims=self._axis)
        return _per_sample(loss, sample_weight, self._weight)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class L2Loss(Loss):
    """0.5 (pred - label)^2."""

    def forward(self, pred, label, sample_weight=None):
        d = pred - label.reshape(*pred.shape)
        return _per_sample(d * d * 0.5, sample_weight, self._weight)


class L1Loss(Loss):
    def forward(self, pred, label, sample_weight=None):
        return _per_sample(nd.abs(pred - label.reshape(*pred.shape)), sample_weight, self._weight)


class SigmoidBinaryCrossEntropyLoss(Loss):
    """Binary cross-entropy of sigmoid(pred) (from_sigmoid=False) against label in [0, 1]."""

    def __init__(self, from_sigmoid: bool = False, weight: float = 1.0, batch_axis: int = 0):
        super().__init__(weight, batch_axis)
        self._from_sigmoid = from_sigmoid

    def forward(self, pred, label, sample_weight=None):
        label = label.reshape(*pred.shape)
        if self._from_sigmoid:
            eps = 1e-12
            loss = -(label * nd.log(pred + eps) + (1 - label) * nd.log(1 - pred + eps))
        else:
            loss = nd.sigmoid_binary_cross_entropy(pred, label)
        return _per_sample(loss, sample_weight, self._weight)


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss
