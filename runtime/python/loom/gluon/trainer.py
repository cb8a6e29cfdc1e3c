"""Trainer: applies an optimizer to a block's parameters after backward,
through the fused update ops (sgd_update, sgd_mom_update, adam_update,
adamw_update, rmsprop_update). step(batch_size) scales the summed gradients
by 1/batch_size, as MXNet's Trainer does."""
from __future__ import annotations

from loom import autograd, nd


class Trainer:
    def __init__(self, params, optimizer: str = "sgd", optimizer_params: dict | None = None, kvstore=None):
        if kvstore not in (None, "device", "local"):
            raise NotImplementedError(f"Trainer: kvstore {kvstore!r} is not available yet (scale-out issue)")
        self._params = list(params.values()) if isinstance(params, dict) else list(params)
        opts = dict(optimizer_params or {})
        self._optimizer = optimizer.lower()
        if self._optimizer not in ("sgd", "nag", "adam", "adamw", "rmsprop", "lamb"):
            raise ValueError(f"Trainer: unknown optimizer {optimizer!r} (sgd, nag, adam, adamw, rmsprop, lamb)")
        self.learning_rate = float(opts.pop("learning_rate", 0.01))
        self._wd = float(opts.pop("wd", 0.0))
        self._clip = float(opts.pop("clip_gradient", -1.0))
        self._momentum = float(opts.pop("momentum", 0.0))
        self._beta1, self._beta2 = float(opts.pop("beta1", 0.9)), float(opts.pop("beta2", 0.999))
        self._epsilon = float(opts.pop("epsilon", 1e-8))
        self._gamma1 = float(opts.pop("gamma1", 0.95))
        self._scheduler = opts.pop("lr_scheduler", None)
        self._lamb_bounds = (float(opts.pop("lower_bound", 1e-3)), float(opts.pop("upper_bound", 10.0)))
        if opts:
            raise ValueError(f"Trainer: unknown optimizer_params {sorted(opts)}")
        self._states: dict = {}
        self._t = 0

    def set_learning_rate(self, lr: float) -> None:
        self.learning_rate = float(lr)

    def step(self, batch_size: int, ignore_stale_grad: bool = False) -> None:
        self.update(batch_size)

    def allreduce_grads(self) -> None:
        """One device, one process: nothing to reduce (KVStore does it when there are more)."""

    def update(self, batch_size: int) -> None:
        self._t += 1
        if self._scheduler is not None:
            self.learning_rate = float(self._scheduler(self._t - 1))
        rescale = 1.0 / batch_size
        with autograd.pause():
            for k, p in enumerate(self._params):
                if p.grad_req == "null" or p._data is None:
                    continue
                w, g = p.data(), p.grad()
                lr, wd = self.learning_rate * p.lr_mult, self._wd * p.wd_mult
                common = dict(wd=wd, rescale_grad=rescale, clip_gradient=self._clip)
                if self._optimizer in ("sgd", "nag"):
                    if self._momentum == 0.0 and self._optimizer == "sgd":
                        nd.sgd_update(w, g, lr, **common)
                    else:
                        mom = self._state(k, w, 1)[0]
                        nd.sgd_mom_update(w, g, mom, lr, momentum=self._momentum, nesterov=self._optimizer == "nag",
                                          **common)
                elif self._optimizer in ("adam", "adamw"):
                    mean, var = self._state(k, w, 2)
                    # bias correction folded into the step size, as MXNet's Adam
                    t = self._t
                    step = lr * (1 - self._beta2 ** t) ** 0.5 / (1 - self._beta1 ** t)
                    update = nd.adam_update if self._optimizer == "adam" else nd.adamw_update
                    update(w, g, mean, var, step, beta1=self._beta1, beta2=self._beta2, epsilon=self._epsilon,
                           **common)
                elif self._optimizer == "lamb":
                    self._lamb(k, w, g, lr, wd, rescale)
                else:
                    n = self._state(k, w, 1)[0]
                    nd.rmsprop_update(w, g, n, lr, gamma1=self._gamma1, epsilon=self._epsilon, **common)

    def _lamb(self, k: int, w, g, lr: float, wd: float, rescale: float) -> None:
        """LAMB (You et al. 2019): Adam's direction plus weight decay, scaled
        per layer by ||w|| / ||update|| (clipped to [lower_bound, upper_bound])."""
        mean, var = self._state(k, w, 2)
        g = g * rescale
        if self._clip > 0:
            g = nd.clip(g, -self._clip, self._clip)
        b1, b2, t = self._beta1, self._beta2, self._t
        (mean * b1 + g * (1 - b1)).copyto(mean)
        (var * b2 + g * g * (1 - b2)).copyto(var)
        update = (mean / (1 - b1 ** t)) / (nd.sqrt(var / (1 - b2 ** t)) + self._epsilon) + w * wd
        w_norm = float(nd.norm(w).asnumpy())
        u_norm = float(nd.norm(update).asnumpy())
        lo, hi = self._lamb_bounds
        ratio = min(max(w_norm, lo), hi) / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        (w - update * (lr * ratio)).copyto(w)

    def _state(self, k: int, w, count: int):
        if k not in self._states:
            self._states[k] = [nd.zeros(w.shape, dtype=w.dtype, ctx=w.device) for _ in range(count)]
        return self._states[k]

    def save_states(self, fname: str) -> None:
        flat = {f"{k}:{i}": s for k, states in self._states.items() for i, s in enumerate(states)}
        flat["_t"] = nd.array([self._t], dtype="int64")
        nd.save(fname, flat)

    def load_states(self, fname: str) -> None:
        loaded = nd.load(fname)
        self._t = int(loaded.pop("_t").asnumpy()[0])
        states: dict = {}
        for key, value in loaded.items():
            k, i = (int(x) for x in key.split(":"))
            states.setdefault(k, {})[i] = value
        self._states = {k: [v[i] for i in sorted(v)] for k, v in states.items()}
