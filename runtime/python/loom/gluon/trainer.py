"""Trainer: applies an optimizer (lm.optimizer) to a block's parameters
after backward. step(batch_size) scales the summed gradients by
1/batch_size, as MXNet's Trainer does.

Parameters kept on several devices (initialize(ctx=[...])) are trained
data-parallel: each device's gradient is summed across devices through a
KVStore (allreduce_grads), then every copy takes the same step, so the
copies stay equal. With update_on_kvstore=True the store applies the
optimizer to its own copy of the weights and the devices pull the result.
With one device and a local KVStore named by string, no store is needed
and none is made (MXNet does the same). A 'dist_*' store is always made:
the other workers need this one's gradients. step(batch_size) takes this
worker's batch size and divides by the samples of all workers."""
from __future__ import annotations

from loom import autograd
from loom import kvstore as kvstores
from loom import optimizer as optimizers


class Trainer:
    def __init__(self, params, optimizer="sgd", optimizer_params: dict | None = None, kvstore="device",
                 update_on_kvstore: bool | None = None):
        listed = list(params.values()) if isinstance(params, dict) else list(params)
        # A parameter shared by two layers is listed under both structural
        # names by collect_params(); stepped twice it took twice the update.
        seen: set = set()
        self._params = [p for p in listed if not (id(p) in seen or seen.add(id(p)))]
        opts = dict(optimizer_params or {})
        self._scale = float(opts.pop("rescale_grad", 1.0))
        param_dict = dict(enumerate(self._params))
        if isinstance(optimizer, optimizers.Optimizer):
            if opts:
                raise ValueError("Trainer: give optimizer_params to the Optimizer itself when passing an instance")
            self._optimizer = optimizer
            self._optimizer.param_dict = param_dict
        else:
            try:
                self._optimizer = optimizers.create(optimizer, param_dict=param_dict, **opts)
            except ValueError as e:
                raise ValueError(f"Trainer: {e}") from None
        self._kv_spec = kvstore
        self._kv = None
        self._kv_ready = False
        asynchronous = isinstance(kvstore, str) and kvstore == "dist_async"
        if asynchronous and update_on_kvstore is False:
            raise ValueError("Trainer: kvstore='dist_async' needs update_on_kvstore=True: with asynchronous "
                             "pushes only the servers hold the current weights")
        self._update_on_kvstore = bool(update_on_kvstore) or asynchronous
        self._states: dict = {}   # parameter index -> one state list per device
        # With every parameter's shape known, the store starts now: each
        # worker of a distributed job then takes worker 0's initial values
        # before its first forward pass, not after its first gradient.
        if all(p._data is not None for p in self._params if p.grad_req != "null"):
            self._init_kvstore()

    # ------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    def set_learning_rate(self, lr: float) -> None:
        if self._update_on_kvstore and self._kv is not None and self._kv.type.startswith("dist_") \
                and self._kv.type != "dist_sync_allreduce":
            raise RuntimeError("Trainer.set_learning_rate: the servers run their own copy of the optimizer "
                               "(update_on_kvstore=True); give it an lr_scheduler instead, which travels with it")
        self._optimizer.set_learning_rate(lr)

    @property
    def optimizer(self) -> optimizers.Optimizer:
        return self._optimizer

    # ------------------------------------------------------------ the store
    def _trainable(self):
        return [(i, p) for i, p in enumerate(self._params) if p.grad_req != "null" and p._data is not None]

    def _init_kvstore(self) -> None:
        if self._kv_ready:
            return
        trainable = self._trainable()
        several = any(len(p.list_ctx()) > 1 for _, p in trainable)
        distributed = isinstance(self._kv_spec, str) and self._kv_spec.startswith("dist")  # dist_*, incl. allreduce
        if self._kv_spec is not None and (several or distributed or not isinstance(self._kv_spec, str)):
            self._kv = kvstores.create(self._kv_spec)
            for i, p in trainable:
                self._kv.init(i, p.list_data()[0])
            # Every worker starts from worker 0's initial values.
            for i, p in trainable:
                self._kv.pull(i, p.list_data())
            if self._update_on_kvstore:
                self._kv.set_optimizer(self._optimizer)
        elif self._update_on_kvstore:
            raise ValueError("Trainer: update_on_kvstore=True needs a kvstore")
        self._kv_ready = True

    @property
    def kvstore(self):
        """The KVStore in use (None while one device needs none)."""
        self._init_kvstore()
        return self._kv

    # ------------------------------------------------------------ steps
    def step(self, batch_size: int, ignore_stale_grad: bool = False) -> None:
        """allreduce_grads() then update(batch_size)."""
        self._init_kvstore()
        if not self._update_on_kvstore:
            self.allreduce_grads()
        self.update(batch_size)

    def allreduce_grads(self) -> None:
        """Sums each parameter's gradients over its devices (into every copy)."""
        self._init_kvstore()
        if self._update_on_kvstore:
            raise RuntimeError("Trainer.allreduce_grads: with update_on_kvstore=True the store reduces "
                               "and updates in step(); call step() instead")
        if self._kv is None:
            return
        trainable = self._trainable()
        if not trainable:
            return
        # One call for every key: a distributed store sends all pushes, then
        # all pulls, and only then waits, instead of a round trip per layer.
        keys = [i for i, _ in trainable]
        grads = [p.list_grad() for _, p in trainable]
        with autograd.pause():
            self._kv.pushpull(keys, grads, out=grads)

    def update(self, batch_size: int, ignore_stale_grad: bool = False) -> None:
        """One optimizer step on every copy of every trainable parameter,
        with the gradients scaled by 1/batch_size."""
        self._init_kvstore()
        # The gradients summed over devices and workers are divided by every
        # sample they came from: W workers of batch b step like one of W * b.
        workers = self._kv.num_workers if self._kv is not None else 1
        self._optimizer.rescale_grad = self._scale / (batch_size * workers)
        if self._update_on_kvstore and hasattr(self._kv, "set_rescale"):
            self._kv.set_rescale(self._optimizer.rescale_grad)
        with autograd.pause():
            if self._update_on_kvstore:  # all pushes, then all pulls (see allreduce_grads)
                trainable = self._trainable()
                keys = [i for i, _ in trainable]
                self._kv.push(keys, [p.list_grad() for _, p in trainable])
                self._kv.pull(keys, [p.list_data() for _, p in trainable])
                return
            for i, p in self._trainable():
                weights = p.list_data()
                if i not in self._states:
                    self._states[i] = [self._optimizer.create_state(i, w) for w in weights]
                self._optimizer.update(i, weights, [w.grad for w in weights], self._states[i])

    # ------------------------------------------------------------ checkpoints
    def save_states(self, fname: str) -> None:
        """The optimizer's states (those of the first device; the copies are
        equal) and step counts, in the NDArray file format."""
        self._init_kvstore()
        if self._update_on_kvstore:
            self._kv.save_optimizer_states(fname)
            return
        optimizers.save_states(fname, self._optimizer, {i: per_device[0] for i, per_device in self._states.items()})

    def load_states(self, fname: str) -> None:
        self._init_kvstore()
        if self._update_on_kvstore:
            self._kv.load_optimizer_states(fname)
            return
        loaded = optimizers.load_states(fname, self._optimizer)
        params = dict(enumerate(self._params))
        self._states = {}
        for i, states in loaded.items():
            if i not in params:
                raise ValueError(f"Trainer.load_states: {fname} holds states of parameter {i}, "
                                 f"but this Trainer has {len(self._params)} parameters")
            devices = params[i].list_ctx()
            self._states[i] = [[s.as_in_context(d) for s in states] for d in devices]
