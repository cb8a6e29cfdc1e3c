"""Optimizers, in MXNet's names (lm.optimizer.SGD, Adam, ...): each holds its
hyper-parameters and applies one step through a fused update op
(sgd_update, adam_update, adagrad_update, ...), so a step is one pass over
the weight and its states.

The Gluon Trainer and a KVStore with set_optimizer() (update on the store)
both drive an optimizer through update(index, weight, grad, state). The
caller owns the states (create_state) so that one optimizer can serve
several devices: update() takes one array or a list of per-device copies of
the same parameter, and counts the step once for all of them (Adam's bias
correction and the lr schedule see the step number, not the copy count)."""
from __future__ import annotations

from loom import nd


class Optimizer:
    """The common part: learning rate (and its schedule), weight decay,
    gradient rescaling and clipping, per-parameter lr_mult / wd_mult
    (from `param_dict`: index -> Parameter)."""

    def __init__(self, learning_rate: float = 0.01, wd: float = 0.0, clip_gradient: float = -1.0,
                 rescale_grad: float = 1.0, lr_scheduler=None, param_dict: dict | None = None, **unknown):
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown optimizer_params {sorted(unknown)}")
        self.lr = float(learning_rate)
        self.wd = float(wd)
        self.clip_gradient = float(clip_gradient if clip_gradient is not None else -1.0)
        self.rescale_grad = float(rescale_grad)
        self.lr_scheduler = lr_scheduler
        self.param_dict = dict(param_dict or {})
        self.num_update = 0
        self._counts: dict = {}

    @property
    def learning_rate(self) -> float:
        return self.lr

    def set_learning_rate(self, lr: float) -> None:
        self.lr = float(lr)

    def create_state(self, index, weight) -> list:
        """The arrays this optimizer keeps per weight (momentum, moments...)."""
        return []

    def update(self, index, weight, grad, state) -> None:
        """One step for parameter `index`. weight / grad / state are one
        array and its state list, or equal-length lists of them (copies of
        the parameter on several devices, updated alike)."""
        if isinstance(weight, (list, tuple)):
            if not (len(weight) == len(grad) == len(state)):
                raise ValueError(f"{type(self).__name__}.update: {len(weight)} weights, {len(grad)} gradients "
                                 f"and {len(state)} states for parameter {index!r}; expected one each per device")
            copies = list(zip(weight, grad, state))
        else:
            copies = [(weight, grad, state)]
        t = self._count(index)
        lr, wd = self._lr_wd(index)
        for w, g, s in copies:
            self._step(w, g, s, lr, wd, t)

    def _count(self, index) -> int:
        t = self._counts.get(index, 0) + 1
        self._counts[index] = t
        if t > self.num_update:
            self.num_update = t
            if self.lr_scheduler is not None:
                self.lr = float(self.lr_scheduler(t - 1))
        return t

    def _lr_wd(self, index) -> tuple[float, float]:
        p = self.param_dict.get(index)
        if p is None:
            return self.lr, self.wd
        return self.lr * p.lr_mult, self.wd * p.wd_mult

    def _common(self, wd: float) -> dict:
        return dict(wd=wd, rescale_grad=self.rescale_grad, clip_gradient=self.clip_gradient)

    def _step(self, w, g, state, lr: float, wd: float, t: int) -> None:
        raise NotImplementedError(type(self).__name__)

    # States of one device's copy, for Trainer.save_states / KVStore.save_optimizer_states.
    def counts(self) -> dict:
        return dict(self._counts)

    def set_counts(self, counts: dict) -> None:
        self._counts = dict(counts)
        self.num_update = max(self._counts.values(), default=0)


def _zeros(weight, count: int) -> list:
    return [nd.zeros(weight.shape, dtype=weight.dtype, ctx=weight.device) for _ in range(count)]


class SGD(Optimizer):
    """weight -= lr * (g + wd * weight); with momentum, the heavy-ball update."""

    def __init__(self, momentum: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def create_state(self, index, weight) -> list:
        return _zeros(weight, 1) if self.momentum != 0.0 else []

    def _step(self, w, g, state, lr, wd, t):
        if not state:
            nd.sgd_update(w, g, lr, **self._common(wd))
        else:
            nd.sgd_mom_update(w, g, state[0], lr, momentum=self.momentum, nesterov=False, **self._common(wd))


class NAG(SGD):
    """SGD with Nesterov momentum."""

    def create_state(self, index, weight) -> list:
        return _zeros(weight, 1)

    def _step(self, w, g, state, lr, wd, t):
        nd.sgd_mom_update(w, g, state[0], lr, momentum=self.momentum, nesterov=True, **self._common(wd))


class Adam(Optimizer):
    """Adam (Kingma & Ba); the bias correction is folded into the step size,
    as MXNet does, so the fused op needs no step counter."""
    _op = "adam_update"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)

    def create_state(self, index, weight) -> list:
        return _zeros(weight, 2)

    def _step(self, w, g, state, lr, wd, t):
        step = lr * (1 - self.beta2 ** t) ** 0.5 / (1 - self.beta1 ** t)
        getattr(nd, self._op)(w, g, state[0], state[1], step, beta1=self.beta1, beta2=self.beta2,
                              epsilon=self.epsilon, **self._common(wd))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""
    _op = "adamw_update"


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton), the non-centred form."""

    def __init__(self, gamma1: float = 0.95, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.gamma1, self.epsilon = float(gamma1), float(epsilon)

    def create_state(self, index, weight) -> list:
        return _zeros(weight, 1)

    def _step(self, w, g, state, lr, wd, t):
        nd.rmsprop_update(w, g, state[0], lr, gamma1=self.gamma1, epsilon=self.epsilon, **self._common(wd))


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al.): per-element steps shrink with the summed squared gradients."""

    def __init__(self, epsilon: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def create_state(self, index, weight) -> list:
        return _zeros(weight, 1)

    def _step(self, w, g, state, lr, wd, t):
        nd.adagrad_update(w, g, state[0], lr, epsilon=self.epsilon, **self._common(wd))


class LAMB(Optimizer):
    """LAMB (You et al. 2019): Adam's direction plus weight decay, scaled per
    layer by ||w|| / ||update||, with ||w|| clipped to [lower_bound, upper_bound]."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-6,
                 lower_bound: float = 1e-3, upper_bound: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.lower_bound, self.upper_bound = float(lower_bound), float(upper_bound)

    def create_state(self, index, weight) -> list:
        return _zeros(weight, 2)

    def _step(self, w, g, state, lr, wd, t):
        mean, var = state
        g = g * self.rescale_grad
        if self.clip_gradient >= 0:
            g = nd.clip(g, -self.clip_gradient, self.clip_gradient)
        b1, b2 = self.beta1, self.beta2
        (mean * b1 + g * (1 - b1)).copyto(mean)
        (var * b2 + g * g * (1 - b2)).copyto(var)
        update = (mean / (1 - b1 ** t)) / (nd.sqrt(var / (1 - b2 ** t)) + self.epsilon) + w * wd
        # The trust ratio needs two norms on the host: one sync per layer, as in every LAMB.
        w_norm = float(nd.norm(w).asnumpy())
        u_norm = float(nd.norm(update).asnumpy())
        ratio = min(max(w_norm, self.lower_bound), self.upper_bound) / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        (w - update * (lr * ratio)).copyto(w)


_REGISTRY = {"sgd": SGD, "nag": NAG, "adam": Adam, "adamw": AdamW, "rmsprop": RMSProp,
             "adagrad": AdaGrad, "lamb": LAMB}


def create(name, **kwargs) -> Optimizer:
    """An optimizer by name (case-insensitive): sgd, nag, adam, adamw,
    rmsprop, adagrad, lamb; an Optimizer instance passes through."""
    if isinstance(name, Optimizer):
        if kwargs:
            raise ValueError("optimizer.create: optimizer_params must be empty when an Optimizer instance is given")
        return name
    cls = _REGISTRY.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {', '.join(sorted(_REGISTRY))}")
    return cls(**kwargs)


def register(cls):
    """Adds an Optimizer subclass under its lower-case class name."""
    _REGISTRY[cls.__name__.lower()] = cls
    return cls


def _encode_key(key) -> str:
    return f"i{key}" if isinstance(key, int) else f"s{key}"


def _decode_key(text: str):
    return int(text[1:]) if text[0] == "i" else text[1:]


def save_states(fname: str, optimizer: Optimizer, states: dict) -> None:
    """Writes `states` (key -> list of arrays) and the optimizer's step
    counts in the NDArray file format: 'state#<key>#<i>' and 'count#<key>'."""
    flat = {}
    for key, arrays in states.items():
        for i, a in enumerate(arrays):
            flat[f"state#{_encode_key(key)}#{i}"] = a
    for key, count in optimizer.counts().items():
        flat[f"count#{_encode_key(key)}"] = nd.array([count], dtype="int64")
    nd.save(fname, flat)


def load_states(fname: str, optimizer: Optimizer, ctx=None) -> dict:
    """Reads a save_states() file: sets the optimizer's step counts and
    returns key -> list of state arrays."""
    states: dict = {}
    counts = {}
    for name, value in nd.load(fname, ctx=ctx).items():
        parts = name.split("#")
        if parts[0] == "count" and len(parts) == 2:
            counts[_decode_key(parts[1])] = int(value.asnumpy()[0])
        elif parts[0] == "state" and len(parts) == 3:
            states.setdefault(_decode_key(parts[1]), {})[int(parts[2])] = value
        else:
            raise ValueError(f"load_states: {fname}: entry {name!r} is not an optimizer state "
                             "(expected 'state#<key>#<i>' or 'count#<key>')")
    optimizer.set_counts(counts)
    return {k: [v[i] for i in sorted(v)] for k, v in states.items()}
