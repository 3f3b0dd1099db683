"""DataLoader workers (`loader:`): augmentation is seeded per sample, so a short `training.fit`
ends with the same weights, byte for byte, with 0 and with 2 worker processes, for a CIFAR-shaped
split with each image augmentation and for a streamed ImageFolder tree, whose images 2 persistent
workers decode off the main process; and the checkpoint's fingerprint ignores the loader settings
(a run resumed with other workers finds its checkpoint)."""

from __future__ import annotations

import pytest
import torch

from seenn.data.registry import get_spec
from seenn.data.source import TensorSource
from seenn.loops.fit import fit
from seenn.loops.resume import fingerprint, result_settings
from seenn.models import build_snn
from seenn.snn.losses import mean_loss

MODEL = {"arch": "resnet", "stem_channels": 4, "widths": [4], "blocks": [1]}
NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}


def _weights_bytes(model) -> bytes:
    return b"".join(t.detach().contiguous().numpy().tobytes() for t in model.state_dict().values())


def _fit(train, val, augment: str, workers: int, tmp_path, tag: str) -> bytes:
    torch.manual_seed(0)
    model = build_snn(MODEL, NEURON, 3, train.spec.num_classes)
    cfg = {"epochs": 2, "batch_size": 8, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "augment": augment}
    fit(model, mean_loss, train, val, timesteps=1, cfg=cfg, seed=3, device=torch.device("cpu"),
        ckpt_dir=tmp_path / tag, fp=tag, desc="fit", loader={"workers": workers, "pin_memory": False})
    return _weights_bytes(model)


@pytest.mark.parametrize("augment,protocol", [("crop_flip", "project"), ("autoaugment_cutout", "project"),
                                              ("autoaugment_cutout", "authors")])
def test_cifar_training_is_byte_identical_with_0_and_2_workers(tmp_path, augment, protocol):
    spec = get_spec("cifar10")
    x = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(20) % 10
    train = TensorSource(spec, x, y, "train", "memory", protocol)
    val = TensorSource(spec, x[:6], y[:6], "val", "memory", protocol)
    serial = _fit(train, val, augment, 0, tmp_path, "w0")
    assert _fit(train, val, augment, 2, tmp_path, "w2") == serial


def test_streamed_imagefolder_training_is_byte_identical_with_0_and_2_workers(tmp_path):
    from test_data_imagenet import imagenet_cfg, make_imagefolder

    from seenn.data.files import open_split
    from seenn.data.prepared import prepare

    prepare(imagenet_cfg(make_imagefolder(tmp_path / "raw")), 5, tmp_path / "prepared")
    train, val = open_split(tmp_path / "prepared" / "train.pt"), open_split(tmp_path / "prepared" / "val.pt")
    serial = _fit(train, val, "crop_flip", 0, tmp_path, "w0")
    assert _fit(train, val, "crop_flip", 2, tmp_path, "w2") == serial
    assert _fit(train, val, "none", 0, tmp_path, "n0") != serial


def test_the_checkpoint_fingerprint_ignores_the_loader_section():
    p = {"seed": 1, "train": {"lr": 0.1}, "loader": {"workers": 0, "pin_memory": False}}
    q = {**p, "loader": {"workers": 4, "pin_memory": True}}
    assert fingerprint(result_settings(p)) == fingerprint(result_settings(q))
    assert fingerprint(result_settings(p)) != fingerprint(result_settings({**p, "seed": 2}))


def test_streamed_imagefolder_decodes_in_two_persistent_workers_off_the_main_process(tmp_path, monkeypatch):
    """Every image is read and decoded in one of the 2 worker processes, the same 2 in both epochs
    (persistent workers, `loader.prefetch` batches ahead), and the batches are those of 0 workers."""
    import os

    from test_data_imagenet import imagenet_cfg, make_imagefolder

    from seenn.data.files import open_split
    from seenn.data.prepared import prepare
    from seenn.data.source import ImageFileSource
    from seenn.loops.fit import ShuffledBatches

    prepare(imagenet_cfg(make_imagefolder(tmp_path / "raw")), 5, tmp_path / "prepared")
    train = open_split(tmp_path / "prepared" / "train.pt")
    log, real = tmp_path / "pids.txt", ImageFileSource.image

    def image(self, i):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(self, i)

    monkeypatch.setattr(ImageFileSource, "image", image)
    loader = {"workers": 2, "pin_memory": True, "prefetch": 3}
    data = ShuffledBatches(train, 4, "crop_flip", torch.Generator().manual_seed(5), loader=loader)
    serial = ShuffledBatches(train, 4, "crop_flip", torch.Generator().manual_seed(5), loader={"workers": 0})
    expected = [list(serial) for _ in range(2)]  # decoded here, in the main process
    log.unlink()
    pids = []
    for epoch in range(2):
        batches = list(data)
        pids.append(set(log.read_text().split()))
        log.unlink()
        assert len(batches) == len(expected[epoch]) == 4
        assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(batches, expected[epoch]))
    assert len(pids[0]) == 2 and pids[0] == pids[1] and str(os.getpid()) not in pids[0]
    assert data._workers._loader.prefetch_factor == 3 and data._workers._loader.persistent_workers
