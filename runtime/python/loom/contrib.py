"""lm.nd.contrib: control flow that works imperatively and inside hybridized
blocks, with gradients (MXNet's mx.nd.contrib.foreach / while_loop / cond).

A traced block cannot follow a Python branch or loop count taken from data:
reading a value while tracing raises (cached_op.py). These functions are
what to use instead. Run imperatively, they are plain Python control flow
over loom ops. Traced, they become graph nodes whose meaning does not depend
on the values:
- `foreach` unrolls over the first dim of `data`, which the trace's input
  shapes fix;
- `while_loop` runs `max_iterations` steps. A step whose condition has
  turned false keeps the loop variables as they were (a `where` on the
  running flag), and its output is zeros;
- `cond` computes both branches and selects one with `where`.

Both modes give the same values and gradients. The cost is that a traced
while_loop always does max_iterations steps, and a traced cond both
branches, as any graph without data-dependent control flow must. An
untaken branch must not fail on the values it sees: it is computed, then
discarded.

`while_loop`'s outputs have max_iterations rows in both modes, the rows
past the last step zero. MXNet's imperative while_loop returns only the
steps taken; a fixed shape here keeps the imperative and traced results
alike."""
from __future__ import annotations

from loom import nd
from loom._C import NDArray


def _tracing() -> bool:
    from loom import cached_op
    return cached_op.is_tracing()


def _as_list(x, what: str) -> tuple[list, bool]:
    """(list of arrays, whether x was a single array)."""
    if isinstance(x, NDArray):
        return [x], True
    if isinstance(x, (list, tuple)) and all(isinstance(a, NDArray) for a in x):
        return list(x), False
    raise TypeError(f"{what}: expected an NDArray or a list of NDArrays, got {type(x).__name__}")


def _restore(arrays: list, single: bool):
    return arrays[0] if single else arrays


def _index(i: int, like: NDArray) -> NDArray:
    return nd.array(i, dtype="int64", ctx=like.device)


def foreach(body, data, init_states):
    """Runs `body(slice, states) -> (outputs, new_states)` over the first dim
    of `data` (an array, or a list of arrays with one first dim). Returns
    (outputs stacked along a new first dim, final states), each as `body`
    returned it: an array or a list of arrays."""
    arrays, single_data = _as_list(data, "foreach: data")
    length = arrays[0].shape[0] if arrays[0].ndim else None
    if length is None or any(a.ndim == 0 or a.shape[0] != length for a in arrays):
        raise ValueError("foreach: every data array needs the same first dim, got shapes "
                         f"{[tuple(a.shape) for a in arrays]}")
    states, single_state = _as_list(init_states, "foreach: init_states")
    traced = _tracing()
    steps: list[list] = []
    single_out = True
    for i in range(length):
        # a view imperatively; take with a constant index in a graph (views have no graph form)
        slices = [nd.take(a, _index(i, a), 0) if traced else a[i] for a in arrays]
        out, new_states = body(_restore(slices, single_data), _restore(states, single_state))
        outs, single_out = _as_list(out, "foreach: body's outputs")
        new_list, _ = _as_list(new_states, "foreach: body's states")
        if len(new_list) != len(states):
            raise ValueError(f"foreach: body returned {len(new_list)} states for {len(states)}")
        steps.append(outs)
        states = new_list
    if not steps:
        raise ValueError("foreach: data has a first dim of 0; there is no step to take the outputs' shapes from")
    stacked = [nd.stack(*[s[k] for s in steps], dim=0) for k in range(len(steps[0]))]
    return _restore(stacked, single_out), _restore(states, single_state)


def while_loop(cond, func, loop_vars, max_iterations: int):
    """While `cond(*loop_vars)` (a one-element array) holds and fewer than
    max_iterations steps ran: `func(*loop_vars) -> (step_output,
    new_loop_vars)`. Returns (outputs stacked along a new first dim with
    max_iterations rows, zero past the last step; final loop_vars), each as
    `func` returned it. step_output may be an empty list."""
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"while_loop: max_iterations must be a positive int, got {max_iterations!r}")
    variables, single_var = _as_list(loop_vars, "while_loop: loop_vars")
    traced = _tracing()
    rows: list[list] = []
    single_out = True
    running = None  # traced: the 0/1 flag of the steps still running

    def step_of(vs):
        out, new_vars = func(*vs)
        outs, single = (([], False) if isinstance(out, (list, tuple)) and not out
                        else _as_list(out, "while_loop: func's step output"))
        new_list, _ = _as_list(new_vars, "while_loop: func's loop_vars")
        if len(new_list) != len(vs):
            raise ValueError(f"while_loop: func returned {len(new_list)} loop_vars for {len(vs)}")
        return outs, single, new_list

    for _ in range(max_iterations):
        flag = cond(*variables)
        if not isinstance(flag, NDArray) or flag.size != 1:
            raise TypeError("while_loop: cond must return a one-element NDArray")
        if not traced:
            if not bool(flag.asnumpy().reshape(())):
                break
            outs, single_out, variables = step_of(variables)
            rows.append(outs)
            continue
        keep = nd.ne(flag.reshape(()), nd.zeros((), dtype=flag.dtype, ctx=flag.device))
        running = keep if running is None else nd.logical_and(running, keep)
        outs, single_out, new_vars = step_of(variables)
        variables = [nd.where(running, n, v) for n, v in zip(new_vars, variables)]
        rows.append([nd.where(running, o, nd.zeros_like(o)) for o in outs])
    if not traced:  # pad to max_iterations rows, as the traced loop has
        if not rows:  # no step ran: take the outputs' shapes from one (discarded) step
            probe, single_out, _ = step_of(variables)
            rows = [[nd.zeros_like(o) for o in probe]]
            rows += [[nd.zeros_like(o) for o in rows[0]] for _ in range(max_iterations - 1)]
        else:
            rows += [[nd.zeros_like(o) for o in rows[0]] for _ in range(max_iterations - len(rows))]
    stacked = [nd.stack(*[r[k] for r in rows], dim=0) for k in range(len(rows[0]))] if rows and rows[0] else []
    return _restore(stacked, single_out) if stacked else [], _restore(variables, single_var)


def cond(pred, then_func, else_func):
    """then_func() if `pred` (a one-element array) is nonzero, else
    else_func(); both return an array or a list of arrays of the same
    shapes and dtypes."""
    if not isinstance(pred, NDArray) or pred.size != 1:
        raise TypeError("cond: pred must be a one-element NDArray")
    if not _tracing():
        return then_func() if bool(pred.asnumpy().reshape(())) else else_func()
    a, single_a = _as_list(then_func(), "cond: then_func's result")
    b, single_b = _as_list(else_func(), "cond: else_func's result")
    if len(a) != len(b) or single_a != single_b or any(
            tuple(x.shape) != tuple(y.shape) or x.dtype != y.dtype for x, y in zip(a, b)):
        raise ValueError("cond: then_func and else_func must return the same number of arrays with the same "
                         f"shapes and dtypes, got {[(tuple(x.shape), x.dtype) for x in a]} and "
                         f"{[(tuple(y.shape), y.dtype) for y in b]}")
    take_then = nd.ne(pred.reshape(()), nd.zeros((), dtype=pred.dtype, ctx=pred.device))
    return _restore([nd.where(take_then, x, y) for x, y in zip(a, b)], single_a)


__all__ = ["foreach", "while_loop", "cond"]
