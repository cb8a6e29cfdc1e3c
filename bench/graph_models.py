"""Small functional models for the graph benchmarks and tests: an MLP, LeNet
and ResNet-18, as functions of (data, label, *params, *aux) over lm.nd ops,
with their parameter and auxiliary-state shapes."""
from __future__ import annotations

import numpy as np

import loom as lm


def _init(shapes: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.0
        v = rng.standard_normal(shape) * scale if len(shape) > 1 else (np.ones(shape) if name.endswith("gamma")
                                                                       else np.zeros(shape))
        out[name] = lm.nd.array(v.astype(np.float32))
    return out


def mlp(batch: int = 64):
    shapes = {"w1": (256, 784), "b1": (256,), "w2": (10, 256), "b2": (10,)}

    def fn(x, label, w1, b1, w2, b2):
        h = lm.nd.relu(lm.nd.linear(x, w1, b1))
        return lm.nd.mean(lm.nd.softmax_cross_entropy(lm.nd.linear(h, w2, b2), label))
    return fn, [(batch, 784)], _init(shapes), {}


def lenet(batch: int = 64):
    shapes = {"c1_w": (6, 1, 5, 5), "c1_b": (6,), "c2_w": (16, 6, 5, 5), "c2_b": (16,),
              "f1_w": (120, 256), "f1_b": (120,), "f2_w": (84, 120), "f2_b": (84,), "f3_w": (10, 84), "f3_b": (10,)}

    def fn(x, label, c1_w, c1_b, c2_w, c2_b, f1_w, f1_b, f2_w, f2_b, f3_w, f3_b):
        y = lm.nd.max_pool(lm.nd.relu(lm.nd.convolution(x, c1_w, c1_b)), kernel=[2])
        y = lm.nd.max_pool(lm.nd.relu(lm.nd.convolution(y, c2_w, c2_b)), kernel=[2])
        y = y.reshape(y.shape[0], -1)
        y = lm.nd.relu(lm.nd.linear(y, f1_w, f1_b))
        y = lm.nd.relu(lm.nd.linear(y, f2_w, f2_b))
        return lm.nd.mean(lm.nd.softmax_cross_entropy(lm.nd.linear(y, f3_w, f3_b), label))
    return fn, [(batch, 1, 28, 28)], _init(shapes), {}


def resnet18(batch: int = 8, size: int = 224, classes: int = 1000, checkpoint: bool = False):
    """checkpoint=True runs the stem and each residual block through
    lm.autograd.checkpoint (their activations recomputed in the backward)."""
    shapes, aux_shapes, blocks = {}, {}, []

    def conv_bn(name, cin, cout, k):
        shapes[f"{name}_w"] = (cout, cin, k, k)
        shapes[f"{name}_gamma"] = (cout,)
        shapes[f"{name}_beta"] = (cout,)
        aux_shapes[f"{name}_mean"] = (cout,)
        aux_shapes[f"{name}_var"] = (cout,)

    conv_bn("stem", 3, 64, 7)
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for b in range(2):
            stride = 2 if stage > 0 and b == 0 else 1
            name = f"s{stage}b{b}"
            conv_bn(f"{name}c1", cin, cout, 3)
            conv_bn(f"{name}c2", cout, cout, 3)
            down = stride != 1 or cin != cout
            if down:
                conv_bn(f"{name}d", cin, cout, 1)
            blocks.append((name, stride, down))
            cin = cout
    shapes["fc_w"] = (classes, 512)
    shapes["fc_b"] = (classes,)
    param_names, aux_names = list(shapes), list(aux_shapes)

    def fn(x, label, *arrays):
        p = dict(zip(param_names, arrays[:len(param_names)]))
        a = dict(zip(aux_names, arrays[len(param_names):]))

        def cbn(name, y, stride, pad):
            y = lm.nd.convolution(y, p[f"{name}_w"], None, stride=[stride], padding=[pad])
            return lm.nd.batch_norm(y, p[f"{name}_gamma"], p[f"{name}_beta"], a[f"{name}_mean"], a[f"{name}_var"],
                                    training=True)

        def stem(x):
            return lm.nd.max_pool(lm.nd.relu(cbn("stem", x, 2, 3)), kernel=[3], stride=[2], padding=[1])
        y = (lm.autograd.checkpoint(stem, x, params=[v for k, v in p.items() if k.startswith("stem")])
             if checkpoint else stem(x))
        for name, stride, down in blocks:
            def block(y, name=name, stride=stride, down=down):
                h = lm.nd.relu(cbn(f"{name}c1", y, stride, 1))
                h = cbn(f"{name}c2", h, 1, 1)
                skip = cbn(f"{name}d", y, stride, 0) if down else y
                return lm.nd.relu(h + skip)
            if checkpoint:
                weights = [v for k, v in p.items() if k.startswith(name)]
                y = lm.autograd.checkpoint(block, y, params=weights)
            else:
                y = block(y)
        y = lm.nd.adaptive_avg_pool(y, [1]).reshape(y.shape[0], -1)
        return lm.nd.mean(lm.nd.softmax_cross_entropy(lm.nd.linear(y, p["fc_w"], p["fc_b"]), label))

    aux = {k: (lm.nd.ones(v) if k.endswith("_var") else lm.nd.zeros(v)) for k, v in aux_shapes.items()}
    return fn, [(batch, 3, size, size)], _init(shapes), aux


def training_graph(model, **kwargs):
    """The symbol of a model's training step: the loss and the parameter gradients."""
    from loom.cached_op import trace_gradient
    fn, input_shapes, params, aux = model(**kwargs)
    inputs = [lm.nd.zeros(s) for s in input_shapes] + [lm.nd.zeros((input_shapes[0][0],), dtype="int64")]
    sym, _ = trace_gradient(fn, inputs, params, aux, what=model.__name__)
    return sym
