"""References NumPy lacks, for the `tests.ref` expressions in opdefs/ (as
`refs.<name>`). Computed in float64 with the standard library, so they are
independent of loom's kernels."""
import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(x):
    return _erf(np.asarray(x, dtype=np.float64))


def axis(dims):
    """A reduction's `dims` (None, an int or a list) as NumPy's `axis`."""
    if dims is None or isinstance(dims, int):
        return dims
    return tuple(dims)


def log_softmax(x, dim):
    """log(softmax(x)) along dim, in float64 with the max subtracted first."""
    x = np.asarray(x, dtype=np.float64)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
