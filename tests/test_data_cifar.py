"""CIFAR loaders on tiny fixtures written in the official on-disk format.

The official files are Python 2 pickles (text as py2 `str`, which `encoding="bytes"` reads as
b"data", b"labels"...); `_Py2Pickler` writes bytes the same way. torchvision's md5 check is
replaced by a file-exists check because fixture bytes cannot match the official md5s."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from seenn.common.errors import SeennError
from seenn.data import cifar
from seenn.data.registry import get_spec
from seenn.data.spec import validate_split


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that stores bytes as py2 `str` (SHORT_BINSTRING / BINSTRING)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)  # rows: 1024 R, 1024 G, 1024 B


def make_cifar10(root: Path, per_class_batch: int = 3, per_class_test: int = 2) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        k = per_class_test if name == "test_batch" else per_class_batch
        labels = [int(c) for c in rng.permutation(np.repeat(np.arange(10), k))]
        _dump(
            folder / name,
            {
                b"batch_label": f"{name} fixture".encode(),
                b"labels": labels,
                b"data": _images(rng, len(labels)),
                b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
            },
        )
    classes = "airplane automobile bird cat deer dog frog horse ship truck".split()
    _dump(folder / "batches.meta", {b"num_cases_per_batch": 10 * per_class_batch,
                                    b"label_names": [c.encode() for c in classes], b"num_vis": 3072})
    return folder


def make_cifar100(root: Path, per_class_train: int = 3, per_class_test: int = 1) -> Path:
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, k in (("train", per_class_train), ("test", per_class_test)):
        fine = [int(c) for c in rng.permutation(np.repeat(np.arange(100), k))]
        _dump(
            folder / name,
            {
                b"filenames": [f"img_{i}.png".encode() for i in range(len(fine))],
                b"batch_label": f"{name} fixture".encode(),
                b"fine_labels": fine,
                b"coarse_labels": [c // 5 for c in fine],
                b"data": _images(rng, len(fine)),
            },
        )
    _dump(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"s{i}".encode() for i in range(20)]})
    return folder


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks files exist but not their md5 (fixtures cannot match it)."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def _cfg(root: Path, val_size: int) -> dict:
    return {"root": str(root), "val_size": val_size, "train_size": 1, "test_size": 1}


def test_fixture_matches_official_pickle_format(tmp_path):
    folder = make_cifar10(tmp_path)
    with open(folder / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")  # how the CIFAR page says to read the files
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (30, 3072)
    assert isinstance(raw[b"labels"], list)
    with open(folder / "data_batch_1", "rb") as f:
        assert "data" in pickle.load(f, encoding="latin1")  # how torchvision reads them


def test_registry_returns_these_specs():
    assert get_spec("cifar10") is cifar.CIFAR10.SPEC
    assert get_spec("cifar100") is cifar.CIFAR100.SPEC
    assert cifar.CIFAR10.SPEC.num_classes == 10 and cifar.CIFAR100.SPEC.num_classes == 100
    for spec in (cifar.CIFAR10.SPEC, cifar.CIFAR100.SPEC):
        assert spec.input_shape == (3, 32, 32) and not spec.event and len(spec.mean) == len(spec.std) == 3


@pytest.mark.parametrize("name,make,n_pool,n_test,val_size", [
    ("cifar10", make_cifar10, 150, 20, 20),
    ("cifar100", make_cifar100, 300, 100, 100),
])
def test_loads_valid_stratified_deterministic_splits(tmp_path, no_md5, name, make, n_pool, n_test, val_size):
    make(tmp_path)
    spec = get_spec(name)
    out = spec.load(_cfg(tmp_path, val_size), 7)
    assert set(out) == {"train", "val", "test"}
    for split, (x, y) in out.items():
        validate_split(spec, split, x, y, "fixture")
    assert out["train"][0].shape[0] == n_pool - val_size
    assert out["val"][0].shape[0] == val_size
    assert out["test"][0].shape[0] == n_test
    # stratified: every class equally represented in val (pool is balanced)
    counts = torch.bincount(out["val"][1], minlength=spec.num_classes)
    assert (counts == val_size // spec.num_classes).all()
    # same seed -> identical; other seed -> other train order, same official test set
    again = spec.load(_cfg(tmp_path, val_size), 7)
    other = spec.load(_cfg(tmp_path, val_size), 8)
    for split in out:
        assert torch.equal(out[split][0], again[split][0]) and torch.equal(out[split][1], again[split][1])
    assert not torch.equal(out["train"][0], other["train"][0])
    assert torch.equal(out["test"][0], other["test"][0])


def test_pixels_and_labels_follow_the_official_layout(tmp_path, no_md5):
    folder = make_cifar10(tmp_path)
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    x, y = cifar.CIFAR10.SPEC.load(_cfg(tmp_path, 10), 0)["test"]
    assert torch.equal(x, torch.from_numpy(raw[b"data"].reshape(-1, 3, 32, 32)))
    assert y.tolist() == raw[b"labels"]


def test_train_and_val_partition_the_official_training_set(tmp_path, no_md5):
    make_cifar10(tmp_path)
    out = cifar.CIFAR10.SPEC.load(_cfg(tmp_path, 30), 3)
    pool = torch.cat([out["train"][0], out["val"][0]]).flatten(1)
    assert pool.shape[0] == 150 and torch.unique(pool, dim=0).shape[0] == 150


def test_missing_directory_names_it(tmp_path):
    with pytest.raises(SeennError) as e:
        cifar.CIFAR10.SPEC.load(_cfg(tmp_path, 10), 0)
    assert str(tmp_path / "cifar-10-batches-py") in str(e.value)
    assert "download=True" in str(e.value)


def test_incomplete_directory_names_it(tmp_path, no_md5):
    folder = make_cifar100(tmp_path)
    (folder / "test").unlink()
    with pytest.raises(SeennError) as e:
        cifar.CIFAR100.SPEC.load(_cfg(tmp_path, 100), 0)
    assert str(folder) in str(e.value) and "CIFAR100" in str(e.value)


def test_real_md5_check_rejects_foreign_files(tmp_path):
    folder = make_cifar10(tmp_path)  # right layout, wrong bytes: torchvision's md5 check must fail
    with pytest.raises(SeennError) as e:
        cifar.CIFAR10.SPEC.load(_cfg(tmp_path, 10), 0)
    assert str(folder) in str(e.value) and "corrupted" in str(e.value)
