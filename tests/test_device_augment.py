"""Augmentation on the training device (`loader.augment_on`, data.device_augment) against today's
per-sample CPU path, on prepared splits of CIFAR-10/100 and CIFAR10-DVS fixtures in their official
on-disk formats: the same seeds give the same tensors for crop, flip, Cutout and the event-frame
transforms; for AutoAugment the same operations and magnitudes per sample, and images equal up
to IMAGE_TOLERANCE (equal here); a short training gives the same weights on either path and is
byte-identical to itself, with or without DataLoader workers drawing the parameters."""

from __future__ import annotations

import pytest
import torch

from seenn.common.errors import SeennError
from seenn.data import device_augment
from seenn.data.files import open_split
from seenn.data.prepared import prepare
from seenn.data.source import augments_on_device, loader_settings
from seenn.loops.fit import ShuffledBatches

# AutoAugment's images: at most one uint8 level apart (1/255 over the smallest std after
# normalization) on at most 0.1 % of the values. torchvision's functions run on a batch of the
# samples that share an operation instead of one sample at a time; on this CPU that changes no value.
LEVEL = 1 / 255 / 0.2
IMAGE_TOLERANCE = (LEVEL + 1e-6, 1e-3)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """Prepared CIFAR-10 and CIFAR-100 splits (project and authors protocols) of official-format fixtures."""
    import os

    import torchvision.datasets.cifar as tv_cifar
    from test_data_cifar import make_cifar10, make_cifar100

    root = tmp_path_factory.mktemp("cifar")
    make_cifar10(root, per_class_batch=2)
    make_cifar100(root, per_class_train=3)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
        for name in ("cifar10", "cifar100"):
            for protocol in ("project", "authors"):
                cfg = {"name": name, "root": str(root), "val_size": 20 if name == "cifar10" else 100, "train_size": 1, "test_size": 1,
                       "protocol": protocol}
                prepare(cfg, 5, root / f"{name}_{protocol}")
                out[name, protocol] = open_split(root / f"{name}_{protocol}" / "train.pt")
    return out


@pytest.fixture(scope="module")
def dvs(tmp_path_factory):
    """A prepared CIFAR10-DVS training split of AEDAT4 fixtures laid out as tonic extracts them."""
    from test_data_cifar10dvs import make_cifar10dvs, pin_split_list

    from seenn.data import cifar10dvs

    root = tmp_path_factory.mktemp("dvs")
    make_cifar10dvs(root, per_class=4)
    with pytest.MonkeyPatch.context() as mp:
        pin_split_list(mp, root, per_class=4)
        mp.setattr(cifar10dvs, "CACHE_ROOT", root / "cache")
        cfg = {"name": "cifar10dvs", "root": str(root), "val_size": 10, "train_size": 1, "test_size": 1,
               "protocol": "project", "frames": 4, "frame_size": 24, "frame_resize": "area"}
        prepare(cfg, 5, root / "prepared")
    return open_split(root / "prepared" / "train.pt")


def _epoch(source, augment: str, on: str, workers: int = 0, batch_size: int = 16, start: int = 0):
    """One epoch of ShuffledBatches' batches on the CPU, augmented on the CPU or 'on the device'."""
    data = ShuffledBatches(source, batch_size, augment, torch.Generator().manual_seed(11),
                           loader={"workers": workers, "augment_on": on}, device=torch.device("cpu"))
    assert data.on_device == (on == "device")
    data.start = start
    return list(data)


def _assert_same_batches(a, b):
    assert len(a) == len(b) and len(a) > 1
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(ya, yb) and xa.dtype == xb.dtype == torch.float32
        assert torch.equal(xa, xb)


@pytest.mark.parametrize("name,augment,protocol", [("cifar10", "crop_flip", "project"), ("cifar100", "none", "project"),
                                                   ("cifar10", "crop_flip", "authors")])
def test_crop_and_flip_on_the_device_give_the_cpu_paths_tensors(cifar, name, augment, protocol):
    src = cifar[name, protocol]
    _assert_same_batches(_epoch(src, augment, "device"), _epoch(src, augment, "cpu"))


def test_the_event_frame_transforms_on_the_device_give_the_cpu_paths_tensors(dvs, monkeypatch):
    seen = []
    real = device_augment.flip_roll_rotate
    monkeypatch.setattr(device_augment, "flip_roll_rotate", lambda x, draws: seen.extend(draws) or real(x, draws))
    device = _epoch(dvs, "flip_roll_rotate", "device", batch_size=8)
    assert {(d["flip"], d["roll"]) for d in seen} == {(f, r) for f in (True, False) for r in (True, False)}
    assert any(abs(d["angle"]) > 5 for d in seen if not d["roll"])
    _assert_same_batches(device, _epoch(dvs, "flip_roll_rotate", "cpu", batch_size=8))


@pytest.mark.parametrize("name,protocol", [("cifar100", "project"), ("cifar10", "authors")])
def test_autoaugment_on_the_device_applies_the_same_operations_and_magnitudes(cifar, name, protocol, monkeypatch):
    """Cutout's holes and the crops are exact; AutoAugment's per-sample operations are recorded on
    both paths (torchvision's AutoAugment.forward on the CPU, device_augment.auto_augment's plan)."""
    import torchvision.transforms.autoaugment as tv_aa

    src = cifar[name, protocol]
    planned = []
    real_aa = device_augment.auto_augment
    monkeypatch.setattr(device_augment, "auto_augment",
                        lambda x, ops, policy: planned.extend(tuple(o for o in s if o) for s in ops) or real_aa(x, ops, policy))
    device = _epoch(src, "autoaugment_cutout", "device")

    applied = []
    real_forward, real_op = tv_aa.AutoAugment.forward, tv_aa._apply_op

    def forward(self, img):
        applied.append([])
        return real_forward(self, img)

    def apply_op(img, op_name, magnitude, interpolation, fill):
        applied[-1].append((op_name, magnitude))
        return real_op(img, op_name, magnitude, interpolation, fill)

    monkeypatch.setattr(tv_aa.AutoAugment, "forward", forward)
    monkeypatch.setattr(tv_aa, "_apply_op", apply_op)
    cpu = _epoch(src, "autoaugment_cutout", "cpu")

    assert [tuple(a) for a in applied] == planned and len(planned) == len(src)
    names = {op for ops in planned for op, _ in ops}
    assert len(names) >= 10, names  # most of the policy's operations were drawn and compared
    assert any(m < 0 for ops in planned for _, m in ops)  # and signed magnitudes
    for (xa, ya), (xb, yb) in zip(device, cpu):
        assert torch.equal(ya, yb)
        diff = (xa - xb).abs()
        assert float(diff.max()) <= IMAGE_TOLERANCE[0] and float((diff > 0).double().mean()) <= IMAGE_TOLERANCE[1]


def test_equalize_on_a_batch_is_torchvisions_per_image():
    from torchvision.transforms.functional import equalize

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=g)
    x[1] = 77  # one level: the step is 0, the image is kept
    x[2] = torch.where(x[2] > 128, 200, 3).to(torch.uint8)  # two levels
    x[3] = (x[3] // 64) * 10  # a few dark levels
    x[4, 0] = 255
    assert torch.equal(device_augment.equalize(x), equalize(x))


@pytest.mark.parametrize("fill", [None, [128.0, 128.0, 128.0]])
def test_each_autoaugment_operation_on_a_batch_is_torchvisions_per_image(fill):
    """Every operation AutoAugment can apply, also those the CIFAR-10 policy never draws (ShearX),
    at a signed magnitude, with torchvision's black and with the authors' grey fill."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.autoaugment import _apply_op

    x = torch.randint(0, 256, (5, 3, 16, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    x[2] = 40  # one level: AutoContrast keeps it
    for name, magnitude in (("ShearX", 0.2), ("ShearY", -0.3), ("TranslateX", -4.0), ("TranslateY", 5.0),
                            ("Rotate", -17.0), ("Rotate", 30.0)):
        grids = device_augment._affine_grids([device_augment._affine_matrix(name, magnitude, 16, 12)] * 5, 16, 12)
        expected = torch.stack([_apply_op(img, name, magnitude, InterpolationMode.NEAREST, fill) for img in x])
        assert torch.equal(device_augment._grid_transform(x, grids, fill), expected), name
    assert torch.equal(device_augment.autocontrast(x), torch.stack([_apply_op(img, "AutoContrast", 0.0, None, None) for img in x]))
    ops = [(("Rotate", 10.0), ("Equalize", 0.0)), (None, ("Brightness", 0.5)), (("TranslateX", 3.0), None),
           (("Posterize", 4.0), ("Rotate", -10.0))]
    policy = device_augment._policy("authors" if fill else "project", 3)
    expected = []
    for img, sample_ops in zip(x, ops):
        for op in sample_ops:
            img = img if op is None else _apply_op(img, *op, InterpolationMode.NEAREST, fill)
        expected.append(img)
    assert torch.equal(device_augment.auto_augment(x[:4], ops, policy), torch.stack(expected))


def test_the_device_path_resumes_mid_epoch_and_its_workers_give_the_same_bytes(cifar):
    src = cifar["cifar100", "project"]
    whole = _epoch(src, "autoaugment_cutout", "device")
    _assert_same_batches(_epoch(src, "autoaugment_cutout", "device", start=2), whole[2:])
    _assert_same_batches(_epoch(src, "autoaugment_cutout", "device", workers=2), whole)


def _fit_bytes(source, augment: str, on: str, workers: int, tmp_path, tag: str) -> bytes:
    from seenn.loops.fit import fit
    from seenn.models import build_snn
    from seenn.snn.losses import mean_loss

    torch.manual_seed(0)
    model = build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4], "blocks": [1]},
                      {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0},
                      3, source.spec.num_classes)
    cfg = {"epochs": 2, "batch_size": 8, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "augment": augment}
    fit(model, mean_loss, source, source.first(4), timesteps=1, cfg=cfg, seed=3, device=torch.device("cpu"),
        ckpt_dir=tmp_path / tag, fp=tag, desc="fit", loader={"workers": workers, "augment_on": on})
    return b"".join(t.detach().contiguous().numpy().tobytes() for t in model.state_dict().values())


def test_a_short_training_on_the_device_path_is_byte_identical_to_itself_and_to_the_cpu_path(cifar, tmp_path):
    src = cifar["cifar100", "project"].first(24)
    run = _fit_bytes(src, "autoaugment_cutout", "device", 0, tmp_path, "d0")
    assert _fit_bytes(src, "autoaugment_cutout", "device", 0, tmp_path, "d0again") == run
    assert _fit_bytes(src, "autoaugment_cutout", "device", 2, tmp_path, "d2") == run
    assert _fit_bytes(src, "autoaugment_cutout", "cpu", 0, tmp_path, "c0") == run  # equal tensors on this CPU
    assert _fit_bytes(src, "crop_flip", "device", 0, tmp_path, "crop") != run


def test_the_config_key_chooses_the_path_and_a_bad_value_names_it(cifar, default_config):
    from seenn.pipeline.config import validate_config

    src = cifar["cifar10", "project"]
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not augments_on_device({"augment_on": "auto"}, src, cpu) and augments_on_device(None, src, cuda)
    assert augments_on_device({"augment_on": "device"}, src, cpu)
    assert not augments_on_device({"augment_on": "cpu"}, src, cuda)
    assert loader_settings(None)["augment_on"] == default_config["loader"]["augment_on"] == "auto"
    with pytest.raises(SeennError, match="'loader.augment_on: gpu' is not one of auto, cpu, device"):
        loader_settings({"augment_on": "gpu"})
    with pytest.raises(SeennError, match="'loader.prefetch: 0' must be an integer of at least 1"):
        loader_settings({"prefetch": 0})
    default_config["loader"]["augment_on"] = "gpu"
    with pytest.raises(SeennError, match="'loader.augment_on'"):
        validate_config(default_config)


@pytest.mark.parametrize("name,augment,shape", [("cifar100", "autoaugment_cutout", (3, 32, 32)),
                                                ("cifar10dvs", "flip_roll_rotate", (10, 2, 48, 48)),
                                                ("imagenet", "crop_flip", (3, 224, 224))])
def test_the_benchmark_gets_an_augmented_batch_of_generated_data_on_a_device(name, augment, shape):
    from seenn.loops.synthetic import one_training_batch

    x, y = one_training_batch(name, 3, "cpu", augment)
    assert x.shape == (3, *shape) and x.dtype == torch.float32 and y.shape == (3,) and bool(torch.isfinite(x).all())
