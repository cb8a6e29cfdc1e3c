"""lm.gluon.data.vision: image datasets and transforms."""
from loom.gluon.data.vision import transforms  # noqa: F401
from loom.gluon.data.vision.datasets import CIFAR10, MNIST, FashionMNIST  # noqa: F401
