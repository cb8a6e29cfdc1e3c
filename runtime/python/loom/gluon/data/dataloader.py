"""DataLoader: batches of a dataset, made in this process or in worker
processes.

With num_workers > 0, workers are started with the 'spawn' method (a fresh
interpreter, not a fork), so they are safe to start after loom's engine and
BLAS thread pools are running. Each worker batchifies its samples with
NumPy and hands the batch over in shared memory (multiprocessing's
SharedMemory: the bytes are not pickled); the main process turns it into
NDArrays. A worker that raises sends its traceback, which the main process
raises again; a worker that dies is reported within `timeout` seconds."""
from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from multiprocessing import shared_memory

import numpy as np

from loom.gluon.data.sampler import BatchSampler, RandomSampler, SequentialSampler


def _as_numpy(x):
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    return np.asarray(x)


def default_batchify_fn(samples):
    """Stacks samples field by field: a list of (data, label) tuples becomes
    (stacked data, stacked labels), as NumPy arrays."""
    first = samples[0]
    if isinstance(first, tuple):
        return tuple(default_batchify_fn([s[k] for s in samples]) for k in range(len(first)))
    return np.stack([_as_numpy(s) for s in samples])


def _to_ndarray(batch):
    from loom import nd
    if isinstance(batch, tuple):
        return tuple(_to_ndarray(b) for b in batch)
    if isinstance(batch, list):
        return [_to_ndarray(b) for b in batch]
    if isinstance(batch, np.ndarray):
        data = batch if batch.dtype != np.float64 else batch.astype(np.float32)  # float32, as MXNet's loader
        return nd.array(np.ascontiguousarray(data))
    return batch


def _share(batch, blocks):
    """The batch with every array moved into shared memory, as (name, shape, dtype)."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(_share(b, blocks) for b in batch)
    array = np.ascontiguousarray(batch)
    block = shared_memory.SharedMemory(create=True, size=max(array.nbytes, 1))
    np.ndarray(array.shape, array.dtype, buffer=block.buf)[...] = array
    blocks.append(block)
    return ("__shm__", block.name, array.shape, array.dtype.str)


def _unshare(batch):
    if isinstance(batch, (tuple, list)) and not (len(batch) == 4 and batch[0] == "__shm__"):
        return type(batch)(_unshare(b) for b in batch)
    _, name, shape, dtype = batch
    block = shared_memory.SharedMemory(name=name)
    try:
        return np.array(np.ndarray(shape, np.dtype(dtype), buffer=block.buf))  # a private copy
    finally:
        block.close()
        block.unlink()


def _worker(dataset, batchify_fn, indices: mp.Queue, results: mp.Queue) -> None:
    while True:
        job = indices.get()
        if job is None:
            return
        batch_id, idx = job
        try:
            blocks = []
            shared = _share(batchify_fn([dataset[i] for i in idx]), blocks)
            for b in blocks:
                b.close()  # the main process unlinks them
            results.put((batch_id, shared, None))
        except Exception:  # noqa: BLE001 - any failure goes to the main process with its traceback
            results.put((batch_id, None, traceback.format_exc()))


class DataLoader:
    def __init__(self, dataset, batch_size: int | None = None, shuffle: bool = False, sampler=None,
                 last_batch: str | None = None, batch_sampler=None, batchify_fn=None, num_workers: int = 0,
                 prefetch: int | None = None, timeout: float = 120.0):
        self._dataset = dataset
        if batch_sampler is None:
            if batch_size is None:
                raise ValueError("DataLoader: batch_size is required without a batch_sampler")
            if sampler is None:
                sampler = RandomSampler(len(dataset)) if shuffle else SequentialSampler(len(dataset))
            elif shuffle:
                raise ValueError("DataLoader: shuffle and sampler are exclusive")
            batch_sampler = BatchSampler(sampler, batch_size, last_batch or "keep")
        elif batch_size is not None or shuffle or sampler is not None or last_batch is not None:
            raise ValueError("DataLoader: batch_size, shuffle, sampler and last_batch go with no batch_sampler")
        self._batch_sampler = batch_sampler
        self._batchify = batchify_fn or default_batchify_fn
        self._workers = max(0, int(num_workers))
        self._prefetch = prefetch if prefetch is not None else 2 * self._workers
        self._timeout = timeout

    def __len__(self) -> int:
        return len(self._batch_sampler)

    def __iter__(self):
        if self._workers == 0:
            for idx in self._batch_sampler:
                yield _to_ndarray(self._batchify([self._dataset[i] for i in idx]))
            return
        yield from self._iter_workers()

    def _iter_workers(self):
        ctx = mp.get_context("spawn")
        indices, results = ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(self._dataset, self._batchify, indices, results), daemon=True)
                 for _ in range(self._workers)]
        for p in procs:
            p.start()
        try:
            jobs = iter(enumerate(self._batch_sampler))
            sent = 0
            for job in jobs:
                indices.put(job)
                sent += 1
                if sent >= max(self._prefetch, self._workers):
                    break
            ready, next_id = {}, 0
            while next_id < sent:
                while next_id not in ready:
                    try:
                        batch_id, shared, error = results.get(timeout=1.0)
                    except queue.Empty:
                        dead = [p for p in procs if not p.is_alive()]
                        if dead:
                            raise RuntimeError(f"DataLoader: worker process {dead[0].pid} died "
                                               f"(exit code {dead[0].exitcode})") from None
                        continue
                    if error is not None:
                        raise RuntimeError(f"DataLoader: a worker failed on batch {batch_id}:\n{error}")
                    ready[batch_id] = shared
                batch = _to_ndarray(_unshare(ready.pop(next_id)))
                next_id += 1
                job = next(jobs, None)
                if job is not None:
                    indices.put(job)
                    sent += 1
                yield batch
        finally:
            for _ in procs:
                indices.put(None)
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
            # batches a failed run left in shared memory
            while True:
                try:
                    _, shared, _ = results.get_nowait()
                except (queue.Empty, OSError, ValueError):
                    break
                if shared is not None:
                    try:
                        _unshare(shared)
                    except FileNotFoundError:
                        pass
