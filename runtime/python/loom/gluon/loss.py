"""Losses: each returns one value per sample (the mean over the other
dims), times `sample_weight` when given, as MXNet Gluon's do."""
from __future__ import annotations

from loom import nd
from loom.gluon.block import HybridBlock


def _per_sample(loss, sample_weight, weight: float, reduced_axis: int | None = None):
    """loss times sample_weight and weight, then its mean over all but the
    batch axis. MXNet computes a loss that reduces over an axis with that
    axis kept (size 1), so the (N, 1) weights its docs ask for multiply
    each sample once; a loss here has that axis dropped (`reduced_axis` of
    pred, or the last), and gets it back before weighting. Multiplied as
    they were, (N,) by (N, 1) made (N, N): each sample weighed the mean
    loss of all."""
    if sample_weight is not None:
        if loss.ndim < sample_weight.ndim:
            axis = loss.ndim if reduced_axis is None else reduced_axis % (loss.ndim + 1)
            loss = nd.expand_dims(loss, axis)
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
        # Float labels go to the ops as they are (index arguments truncate
        # them): an astype here would turn a NaN label into class 0 silently.
        if self._sparse and not self._from_logits:
            loss = nd.softmax_cross_entropy(pred, label, dim=self._axis)
        else:
            logp = pred if self._from_logits else nd.log_softmax(pred, dim=self._axis)
            if self._sparse:
                loss = -nd.gather(logp, nd.expand_dims(label, self._axis), dim=self._axis)
                loss = nd.squeeze(loss, self._axis)
            else:
                loss = -nd.sum(logp * label, dims=self._axis)
        return _per_sample(loss, sample_weight, self._weight, reduced_axis=self._axis)


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


class KLDivLoss(Loss):
    """sum label * (log label - pred) over the last axis; pred holds log-probabilities
    (from_logits=True) or logits (False: log_softmax is applied)."""

    def __init__(self, from_logits: bool = True, axis: int = -1, weight: float = 1.0, batch_axis: int = 0):
        super().__init__(weight, batch_axis)
        self._from_logits, self._axis = from_logits, axis

    def forward(self, pred, label, sample_weight=None):
        logp = pred if self._from_logits else nd.log_softmax(pred, dim=self._axis)
        loss = label * (nd.log(label + 1e-12) - logp)
        return _per_sample(loss, sample_weight, self._weight)


class HuberLoss(Loss):
    """0.5 d^2 / rho where |d| < rho, |d| - rho / 2 elsewhere (d = pred - label)."""

    def __init__(self, rho: float = 1.0, weight: float = 1.0, batch_axis: int = 0):
        super().__init__(weight, batch_axis)
        self._rho = rho

    def forward(self, pred, label, sample_weight=None):
        d = nd.abs(pred - label.reshape(*pred.shape))
        loss = nd.where(d < self._rho, d * d * (0.5 / self._rho), d - 0.5 * self._rho)
        return _per_sample(loss, sample_weight, self._weight)


class HingeLoss(Loss):
    """max(0, margin - pred * label), labels in {-1, 1}."""

    def __init__(self, margin: float = 1.0, weight: float = 1.0, batch_axis: int = 0):
        super().__init__(weight, batch_axis)
        self._margin = margin

    def forward(self, pred, label, sample_weight=None):
        loss = nd.relu(self._margin - pred * label.reshape(*pred.shape))
        return _per_sample(loss, sample_weight, self._weight)


class CTCLoss(Loss):
    """Connectionist temporal classification over pred (N, T, C) logits
    (layout 'NTC') or (T, N, C) ('TNC'); labels (N, S) padded with -1 or
    given label_lengths; blank is class 0 (MXNet's blank_label='first')."""

    def __init__(self, layout: str = "NTC", label_layout: str = "NT", weight: float = 1.0):
        super().__init__(weight, 0)
        if layout not in ("NTC", "TNC") or label_layout != "NT":
            raise ValueError("CTCLoss: layout 'NTC' or 'TNC', label_layout 'NT'")
        self._layout = layout

    def forward(self, pred, label, pred_lengths=None, label_lengths=None, sample_weight=None):
        # operators only (no asnumpy), so the loss hybridizes
        if self._layout == "NTC":
            pred = nd.swapaxes(pred, 0, 1)
        t, n = pred.shape[0], pred.shape[1]
        logp = nd.log_softmax(pred, dim=-1)
        if pred_lengths is None:
            pred_lengths = nd.full((n,), t, dtype="int64", ctx=pred.device)
        label = label.astype("int64")
        present = label >= 0  # -1 pads
        if label_lengths is None:
            label_lengths = nd.sum(present.astype("int64"), dims=1)
        targets = label * present.astype("int64")  # pads as 0 (blank), past each label length
        loss = nd.ctc_loss(logp, targets, pred_lengths.astype("int64"), label_lengths.astype("int64"), blank=0)
        return _per_sample(loss, sample_weight, self._weight)
