"""lm.gluon.data: datasets, samplers and the DataLoader."""
from loom.gluon.data import vision  # noqa: F401
from loom.gluon.data.dataloader import DataLoader, default_batchify_fn  # noqa: F401
from loom.gluon.data.dataset import ArrayDataset, Dataset, SimpleDataset  # noqa: F401
from loom.gluon.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SplitSampler  # noqa: F401
