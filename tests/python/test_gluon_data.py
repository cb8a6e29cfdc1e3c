"""gluon.data (datasets, samplers, DataLoader with and without worker
processes), vision datasets and transforms, and metrics."""
import os

import numpy as np
import pytest

import loom as lm
from loom.gluon.data import ArrayDataset, DataLoader, SimpleDataset
from loom.gluon.data.vision import transforms

FASHION = "/usr/share/datasets/fashion-mnist"


class BadDataset:
    """Raises for one index: the error must reach the main process."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        if i == 13:
            raise ValueError(f"bad sample {i}")
        return np.full((3,), i, np.float32), np.int32(i)


class DyingDataset(BadDataset):
    def __getitem__(self, i):
        if i == 7:
            os._exit(3)
        return super().__getitem__(i)


def test_batches_last_batch_modes_and_shuffle():
    x = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.int64)
    ds = ArrayDataset(x, y)
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    np.testing.assert_array_equal(batches[1][0].asnumpy(), x[4:8])
    assert batches[0][1].dtype == "int64"
    assert len(list(DataLoader(ds, batch_size=4, last_batch="discard"))) == 2
    roll = DataLoader(ds, batch_size=4, last_batch="rollover")
    assert len(list(roll)) == 2 and [len(b[1]) for b in roll] == [4, 4, 4]  # 2 carried + 10 = 12
    seen = np.concatenate([b[1].asnumpy() for b in DataLoader(ds, batch_size=3, shuffle=True)])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    with pytest.raises(ValueError, match="shuffle and sampler"):
        DataLoader(ds, batch_size=2, shuffle=True, sampler=lm.gluon.data.SequentialSampler(10))
    assert [int(b.asnumpy()[0]) for b in DataLoader(SimpleDataset([5, 6, 7]), batch_size=1)] == [5, 6, 7]


def test_worker_processes_after_engine_threads_several_epochs():
    lm.nd.waitall()
    (lm.nd.ones((256, 256)) @ lm.nd.ones((256, 256))).asnumpy()  # engine and BLAS pools running
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    ds = ArrayDataset(x, np.arange(50))
    ref = [b[0].asnumpy() for b in DataLoader(ds, batch_size=8)]
    loader = DataLoader(ds, batch_size=8, num_workers=2)
    for _ in range(2):
        got = [b[0].asnumpy() for b in loader]
        assert len(got) == len(ref) and all(np.array_equal(a, b) for a, b in zip(got, ref))


def test_a_worker_error_reaches_the_main_process_with_its_traceback():
    with pytest.raises(RuntimeError, match=r"(?s)worker failed on batch 3.*ValueError: bad sample 13"):
        list(DataLoader(BadDataset(), batch_size=4, num_workers=2))


def test_a_dead_worker_is_reported():
    with pytest.raises(RuntimeError, match="worker process .* died"):
        list(DataLoader(DyingDataset(), batch_size=4, num_workers=1))


@pytest.mark.skipif(not os.path.exists(FASHION), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_with_transforms():
    ds = lm.gluon.data.vision.FashionMNIST(train=False)
    assert len(ds) == 10000
    img, label = ds[0]
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8 and 0 <= label < 10
    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.286, 0.353)])
    x, y = next(iter(DataLoader(ds.transform_first(t), batch_size=16)))
    assert x.shape == (16, 1, 28, 28) and x.dtype == "float32" and y.shape == (16,)
    np.testing.assert_allclose(x.asnumpy()[0, 0], (img[:, :, 0] / 255.0 - 0.286) / 0.353, rtol=1e-5, atol=1e-6)


def test_missing_dataset_names_the_path_and_the_remedy(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz not found: install Debian's "
                                                 "dataset-fashion-mnist"):
        lm.gluon.data.vision.FashionMNIST(root=str(tmp_path))


def test_transforms():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    t = transforms.ToTensor()(img)
    assert t.shape == (3, 4, 6) and t.dtype == np.float32 and t.max() <= 1.0
    assert transforms.RandomFlipLeftRight(p=1.0)(img)[0, 0, 0] == img[0, 5, 0]
    assert transforms.RandomCrop(3, pad=1)(img).shape == (3, 3, 3)
    assert transforms.Resize((3, 2))(img).shape == (2, 3, 3)


def test_metrics_against_numpy():
    m = lm.gluon.metric.Accuracy()
    m.update(lm.nd.array([0, 1, 2], dtype="int64"), lm.nd.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]]))
    assert m.get() == ("accuracy", 2 / 3)
    top2 = lm.gluon.metric.TopKAccuracy(2)
    top2.update(np.array([2]), np.array([[0.5, 0.1, 0.4]]))
    assert top2.get()[1] == 1.0
    ce = lm.gluon.metric.CrossEntropy()
    ce.update(np.array([0, 1]), np.array([[0.5, 0.5], [0.25, 0.75]]))
    assert abs(ce.get()[1] - (-np.log(0.5) - np.log(0.75)) / 2) < 1e-9
    rmse = lm.gluon.metric.RMSE()
    rmse.update(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    assert abs(rmse.get()[1] - np.sqrt(2.0)) < 1e-9
    f1 = lm.gluon.metric.F1()
    f1.update(np.array([1, 0, 1, 1]), np.array([1, 1, 0, 1]))
    assert abs(f1.get()[1] - 2 / 3) < 1e-9


def test_split_sampler_gives_disjoint_shards_that_cover_the_data():
    parts = [lm.gluon.data.SplitSampler(10, 3, i) for i in range(3)]
    first = [list(p) for p in parts]
    assert sorted(sum(first, [])) == list(range(10))
    assert [len(p) for p in parts] == [4, 3, 3]
    second = [list(p) for p in parts]
    assert [sorted(a) for a in first] == [sorted(b) for b in second]  # the same shard each epoch
    assert first != second  # in a new order
    assert list(lm.gluon.data.SplitSampler(5, 2, 1, shuffle=False)) == [1, 3]
    with pytest.raises(ValueError, match=r"part_index 2 is not in \[0, 2\)"):
        lm.gluon.data.SplitSampler(5, 2, 2)
