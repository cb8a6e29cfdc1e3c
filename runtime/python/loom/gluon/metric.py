"""Evaluation metrics (MXNet's names): update(labels, preds) with arrays or
lists of arrays, get() -> (name, value), reset()."""
from __future__ import annotations

import numpy as np


def _np(x):
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


def _pairs(labels, preds):
    labels = labels if isinstance(labels, (list, tuple)) else [labels]
    preds = preds if isinstance(preds, (list, tuple)) else [preds]
    if len(labels) != len(preds):
        raise ValueError(f"metric: {len(labels)} label arrays for {len(preds)} prediction arrays")
    return [(_np(l), _np(p)) for l, p in zip(labels, preds)]


class EvalMetric:
    def __init__(self, name: str):
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.sum_metric, self.num_inst = 0.0, 0

    def get(self):
        return self.name, (self.sum_metric / self.num_inst if self.num_inst else float("nan"))

    def __repr__(self) -> str:
        name, value = self.get()
        return f"{name}={value:.4f}"


class Accuracy(EvalMetric):
    """Fraction of samples whose argmax prediction (or given class) equals the label."""

    def __init__(self, axis: int = 1, name: str = "accuracy"):
        self._axis = axis
        super().__init__(name)

    def update(self, labels, preds) -> None:
        for label, pred in _pairs(labels, preds):
            if pred.ndim > label.ndim:
                pred = pred.argmax(axis=self._axis)
            self.sum_metric += float((pred.astype(np.int64).ravel() == label.astype(np.int64).ravel()).sum())
            self.num_inst += label.size


class TopKAccuracy(EvalMetric):
    def __init__(self, top_k: int = 1, name: str = "top_k_accuracy"):
        self._k = top_k
        super().__init__(f"{name}_{top_k}")

    def update(self, labels, preds) -> None:
        for label, pred in _pairs(labels, preds):
            top = np.argsort(-pred, axis=1)[:, :self._k]
            self.sum_metric += float((top == label.reshape(-1, 1)).any(axis=1).sum())
            self.num_inst += label.shape[0]


class CrossEntropy(EvalMetric):
    """Mean -log p[label] of predicted probabilities."""

    def __init__(self, eps: float = 1e-12, name: str = "cross-entropy"):
        self._eps = eps
        super().__init__(name)

    def update(self, labels, preds) -> None:
        for label, pred in _pairs(labels, preds):
            p = pred[np.arange(label.shape[0]), label.astype(np.int64).ravel()]
            self.sum_metric += float(-np.log(p + self._eps).sum())
            self.num_inst += label.shape[0]


class Perplexity(CrossEntropy):
    def __init__(self, eps: float = 1e-12, name: str = "perplexity"):
        super().__init__(eps, name)

    def get(self):
        name, ce = super().get()
        return name, float(np.exp(ce))


class MAE(EvalMetric):
    def __init__(self, name: str = "mae"):
        super().__init__(name)

    def update(self, labels, preds) -> None:
        for label, pred in _pairs(labels, preds):
            self.sum_metric += float(np.abs(label.reshape(pred.shape) - pred).mean()) * label.shape[0]
            self.num_inst += label.shape[0]


class MSE(EvalMetric):
    def __init__(self, name: str = "mse"):
        super().__init__(name)

    def update(self, labels, preds) -> None:
        for label, pred in _pairs(labels, preds):
            self.sum_metric += float(((label.reshape(pred.shape) - pred) ** 2).mean()) * label.shape[0]
            self.num_inst += label.shape[0]


class RMSE(MSE):
    def __init__(self, name: str = "rmse"):
        super().__init__(name)

    def get(self):
        name, mse = super().get()
        return name, float(np.sqrt(mse))


class F1(EvalMetric):
    """Binary F1 over all updates (class 1 positive; predictions are argmaxed or thresholded at 0.5)."""

    def __init__(self, name: str = "f1"):
        super().__init__(name)

    def reset(self) -> None:
        super().reset()
        self._tp = self._fp = self._fn = 0

    def update(self, labels, preds) -> None:
        for label, pred in _pairs(labels, preds):
            pred = pred.argmax(axis=1) if pred.ndim > 1 else (pred > 0.5)
            label = label.ravel().astype(bool)
            pred = pred.ravel().astype(bool)
            self._tp += int((pred & label).sum())
            self._fp += int((pred & ~label).sum())
            self._fn += int((~pred & label).sum())
            self.num_inst += label.size

    def get(self):
        precision = self._tp / (self._tp + self._fp) if self._tp + self._fp else 0.0
        recall = self._tp / (self._tp + self._fn) if self._tp + self._fn else 0.0
        return self.name, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)
