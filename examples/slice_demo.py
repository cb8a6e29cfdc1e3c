"""The first thing loom can do end to end: operators declared in YAML
(opdefs/elementwise/*.yaml), generated into C++ kernels and Python bindings,
called on NDArrays. The Fashion-MNIST training demo replaces this as the
README's main job once the training stack exists."""
import numpy as np

import loom as lm

x = lm.nd.array([-1.0, 2.0])
print("relu([-1, 2])            =", lm.nd.relu(x).asnumpy())

a = lm.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3))
b = lm.nd.array([10.0, 20.0, 30.0])
print("add((2,3), (3,)) broadcast =\n", lm.nd.add(a, b).asnumpy())
print("mul(int32, float32)      =", lm.nd.mul(lm.nd.array([1, 2, 3], dtype="int32"), lm.nd.array([0.5, 0.5, 0.5])))
print("operators in this build  :", ", ".join(lm._C.list_ops()))
