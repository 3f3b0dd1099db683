"""ImageNet on a generated ImageFolder tree (tiny JPEGs of different sizes per class): the
manifest split files list every image with its sha256, the train and eval transforms give
[B, 3, crop, crop], a changed or missing image stops with one line naming it, and the data stage
writes no pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seenn.common.errors import SeennError
from seenn.data.files import load_split, open_split
from seenn.data.prepared import prepare
from seenn.data.source import eval_batches, sample_generator

CLASSES = ("n01440764", "n01443537", "n01484850")


def make_imagefolder(root: Path, train_per_class: int = 6, val_per_class: int = 2) -> Path:
    """train/<wnid>/*.JPEG and val/<wnid>/*.JPEG: class-coloured noise, sizes varying per image."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, n in (("train", train_per_class), ("val", val_per_class)):
        for k, wnid in enumerate(CLASSES):
            (root / part / wnid).mkdir(parents=True)
            for i in range(n):
                h, w = 20 + 7 * i + 3 * k, 30 + 5 * i
                img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
                img[..., k] += 150
                Image.fromarray(img).save(root / part / wnid / f"{wnid}_{i}.JPEG", quality=90)
    return root


def imagenet_cfg(root: Path, **kw) -> dict:
    return {"name": "imagenet", "root": str(root), "val_size": 3, "train_size": 10, "test_size": 10,
            "protocol": "project", "frames": 10, "frame_size": 48, "frame_resize": "area", "image_size": 16,
            "resize_size": 18, **kw}


@pytest.fixture()
def prepared(tmp_path):
    root = make_imagefolder(tmp_path / "raw")
    out = tmp_path / "prepared"
    manifest = prepare(imagenet_cfg(root), 5, out)
    return root, out, manifest


def test_the_data_stage_writes_checked_file_lists_with_a_hash_per_image(prepared):
    root, out, manifest = prepared
    assert {s: manifest["splits"][s]["n"] for s in ("train", "val", "test")} == {"train": 15, "val": 3, "test": 6}
    assert manifest["splits"]["val"]["counts_per_class"][:3] == [1, 1, 1]
    assert manifest["input_shape"] == [3, 16, 16]
    train, test = open_split(out / "train.pt"), open_split(out / "test.pt")
    assert train.streamed and train.spec.input_shape == (3, 16, 16)
    assert all(f.startswith("train/") for f in train.files) and all(f.startswith("val/") for f in test.files)
    val = open_split(out / "val.pt")
    assert not set(val.files) & set(train.files) and len(set(train.files) | set(val.files)) == 18
    import hashlib

    assert test.sha256[0] == hashlib.sha256((root / test.files[0]).read_bytes()).hexdigest()
    assert (out / "train.pt").stat().st_size < 20_000  # a list, not pixels
    with pytest.raises(SeennError, match="needs the split in memory"):
        load_split(out / "train.pt")


def test_train_and_eval_transforms_give_crop_sized_normalized_batches(prepared):
    _, out, _ = prepared
    test = open_split(out / "test.pt")
    xb, yb = next(iter(eval_batches(test, 4)))
    assert xb.shape == (4, 3, 16, 16) and xb.dtype == torch.float32 and yb.tolist() == test.y[:4].tolist()
    again, _ = next(iter(eval_batches(test, 4, {"workers": 2, "pin_memory": True})))
    assert torch.equal(xb, again)  # the same bytes from worker processes
    assert float(xb.abs().max()) < 3.0  # normalized with the ImageNet mean/std
    train = open_split(out / "train.pt")
    a = train.train_input(0, sample_generator(1, 0), "crop_flip")
    assert a.shape == (3, 16, 16)
    assert torch.equal(a, train.train_input(0, sample_generator(1, 0), "crop_flip"))
    assert any(not torch.equal(a, train.train_input(0, sample_generator(1, k), "crop_flip")) for k in range(1, 6))
    with pytest.raises(SeennError, match="augmentation 'autoaugment_cutout' is not available for the streamed dataset imagenet"):
        train.train_input(0, sample_generator(1, 0), "autoaugment_cutout")


def test_an_edited_or_missing_image_stops_with_one_line_naming_it(prepared):
    root, out, _ = prepared
    test = open_split(out / "test.pt")
    edited = root / test.files[1]
    edited.write_bytes(edited.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(SeennError, match=f"image {edited} does not match its sha256") as e:
        list(eval_batches(test, 4))
    assert "\n" not in str(e.value)
    with pytest.raises(SeennError, match=f"image {edited} does not match its sha256") as e:
        list(eval_batches(test, 4, {"workers": 2, "pin_memory": False}))  # raised in a worker process
    assert "\n" not in str(e.value)
    gone = root / test.files[3]
    gone.unlink()
    with pytest.raises(SeennError, match=f"image {gone} listed in .* cannot be read"):
        test.eval_inputs(torch.tensor([3]))


def test_missing_or_inconsistent_trees_stop_the_data_stage(tmp_path):
    with pytest.raises(SeennError, match="dataset 'imagenet' not found: expected directory .*train"):
        prepare(imagenet_cfg(tmp_path / "nothing"), 0, tmp_path / "out")
    root = make_imagefolder(tmp_path / "raw")
    (root / "val" / "n09999999").mkdir()
    with pytest.raises(SeennError, match="hold different class folders"):
        prepare(imagenet_cfg(root), 0, tmp_path / "out")
    (root / "val" / "n09999999").rmdir()
    for f in (root / "train" / CLASSES[1]).iterdir():
        f.unlink()
    with pytest.raises(SeennError, match=f"class folder .*{CLASSES[1]} holds no images"):
        prepare(imagenet_cfg(root), 0, tmp_path / "out")


def test_the_authors_protocol_trains_on_all_training_images_and_selects_on_test(tmp_path):
    root = make_imagefolder(tmp_path / "raw")
    manifest = prepare(imagenet_cfg(root, protocol="authors"), 5, tmp_path / "out")
    assert manifest["protocol"] == "authors"
    train, val, test = (open_split(tmp_path / "out" / f"{s}.pt") for s in ("train", "val", "test"))
    assert len(train) == 18 and val.files == test.files and val.protocol == "authors"


def test_training_evaluation_energy_inputs_and_the_policy_stream_the_split(tmp_path):
    """The stages run on a streamed split: train_snn, evaluate, the engine stages' inputs (cut to
    engine.stream_samples) and SEENN-II policy training / evaluation."""
    from seenn.data.source import held_inputs
    from seenn.methods.policy.inputs import load_policy_split
    from seenn.methods.policy.training import evaluate_policy, fit_policy
    from seenn.stages.declaration import StageContext
    from seenn.stages.evaluate import stage_evaluate_snn
    from seenn.stages.train_snn import stage_train_snn

    prepare(imagenet_cfg(make_imagefolder(tmp_path / "raw")), 5, tmp_path / "p")
    splits = {s: str(tmp_path / "p" / f"{s}.pt") for s in ("train", "val", "test")}
    cpu, loader = torch.device("cpu"), {"workers": 0, "pin_memory": False}
    train = {"timesteps": 2, "epochs": 1, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0,
             "loss": "mean", "tet_lambda": 0.001, "tet_phi": 1.0, "augment": "crop_flip", "log_every": 1,
             "max_skipped_steps": 50, "compile": False, "tf32": False}
    params = {"seed": 1, "device": "cpu", "deterministic": True, "amp": "none", "loader": loader, "train": train,
              "model": {"arch": "resnet", "stem_channels": 4, "widths": [4], "blocks": [1]},
              "neuron": {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}}
    snn = tmp_path / "snn.pt"
    stage_train_snn(StageContext("train_snn", params, {k: splits[k] for k in ("train", "val")},
                                 {"model": str(snn), "log": str(tmp_path / "log.csv")}, cpu, tmp_path / "ck"))
    outs = {f"logits_{s}": str(tmp_path / f"logits_{s}.pt") for s in ("train", "val", "test")}
    stage_evaluate_snn(StageContext("evaluate_direct", {"device": "cpu", "deterministic": True, "loader": loader,
                                                        "evaluate": {"batch_size": 4}},
                                    {"model": str(snn), **splits}, {**outs, "metrics": str(tmp_path / "m.json")},
                                    cpu, tmp_path / "ck2"))
    spec, x, correct = load_policy_split(splits["test"], outs["logits_test"])
    assert x.shape == (6, 3, 16, 16) and correct.shape == (6, 2) and x[2:4].shape == (2, 3, 16, 16)
    cfg = {"policy_stem_channels": 4, "policy_widths": [4], "policy_stem_stride": 2, "reward_base": 2.0,
           "batch_size": 4, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}
    policy, rows = fit_policy(x, correct, cfg=cfg, beta=1.0, estimator="expected", weighting=False, epochs=1,
                              in_channels=3, seed=0, device=cpu, ckpt_dir=tmp_path / "pol", fp="p", desc="policy")
    assert len(rows) == 1 and 1 <= evaluate_policy(policy, x, correct, cpu)["test_avg_timesteps"] <= 2
    cut, xin = held_inputs(open_split(splits["test"]), 4)
    assert xin.shape == (4, 3, 16, 16) and len(cut) == 4 and torch.equal(xin, x[:4])


def test_the_config_check_refuses_what_streamed_imagenet_cannot_do():
    import copy

    import yaml

    from seenn.pipeline.config import validate_config

    base = yaml.safe_load(open(Path(__file__).parents[1] / "params.yaml"))
    ok = copy.deepcopy(base)
    ok["data"].update(name="imagenet", val_size=10000)
    ok["train"]["augment"] = "crop_flip"
    validate_config(ok, "cfg")
    bad = copy.deepcopy(ok)
    bad["train"]["augment"] = "autoaugment_cutout"
    with pytest.raises(SeennError, match="'train.augment': augmentation 'autoaugment_cutout' is not available for the "
                                         "streamed dataset imagenet"):
        validate_config(bad, "cfg")
    bad = copy.deepcopy(ok)
    bad["data"].update(image_size=224, resize_size=200)
    with pytest.raises(SeennError, match="'data.resize_size' \\(200\\) must be at least 'data.image_size' \\(224\\)"):
        validate_config(bad, "cfg")


def test_the_shifted_split_streams_with_the_same_noise_in_worker_processes(prepared):
    """Gaussian pixel noise on a streamed split (data/shift.py): per-sample seeding gives the same
    noisy batches in this process and in DataLoader workers, and the pixels stay in [0, 1]."""
    from seenn.data.shift import NoisySource

    _, out, _ = prepared
    test = open_split(out / "test.pt")
    noisy = NoisySource(test, 0.2, seed=3)
    assert noisy.streamed
    xb, yb = next(iter(eval_batches(noisy, 6)))
    again, _ = next(iter(eval_batches(noisy, 6, {"workers": 2, "pin_memory": False})))
    assert torch.equal(xb, again) and yb.tolist() == test.y[:6].tolist()
    clean, _ = next(iter(eval_batches(test, 6)))
    assert not torch.equal(xb, clean)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (test.spec.mean, test.spec.std))
    pixels = xb * std + mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
