"""`data.protocol: authors`: the data stage trains on all training images and makes val a copy
of test; CIFAR-10 inputs use the authors' std; Cutout runs before normalization with a black hole
and AutoAugment fills with 128. `project` (the default) writes split files without the key."""

from __future__ import annotations

import torch

from seenn.common.io import load_checked
from seenn.data.augment import augmented_input, auto_augment
from seenn.data.files import open_split
from seenn.data.prepared import authors_protocol, prepare
from seenn.data.registry import get_spec
from seenn.data.spec import to_input

CIFAR = get_spec("cifar10")
DIGITS_CFG = {"name": "digits", "root": "data/raw", "val_size": 50, "train_size": 300, "test_size": 100}


def test_authors_splits_train_on_train_plus_val_and_select_on_test(tmp_path):
    prepare({**DIGITS_CFG, "protocol": "authors"}, 3, tmp_path / "a")
    prepare({**DIGITS_CFG, "protocol": "project"}, 3, tmp_path / "p")
    a = {s: open_split(tmp_path / "a" / f"{s}.pt") for s in ("train", "val", "test")}
    p = {s: open_split(tmp_path / "p" / f"{s}.pt") for s in ("train", "val", "test")}
    assert torch.equal(a["train"].x, torch.cat([p["train"].x, p["val"].x]))
    assert torch.equal(a["val"].x, p["test"].x) and torch.equal(a["val"].y, p["test"].y)
    assert a["train"].protocol == "authors" and p["train"].protocol == "project"
    assert "protocol" not in load_checked(tmp_path / "p" / "train.pt", what="split", producer="test")


def test_authors_cifar10_std_is_read_from_the_split_file(tmp_path):
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(4)
    splits = authors_protocol({"train": (x, y), "val": (x[:2], y[:2]), "test": (x[2:], y[2:])})
    assert splits["train"][0].shape[0] == 6 and torch.equal(splits["val"][0], x[2:])
    from seenn.data.files import save_split

    save_split(tmp_path / "a.pt", "cifar10", "train", x, y, "authors")
    save_split(tmp_path / "p.pt", "cifar10", "train", x, y)
    a, p = open_split(tmp_path / "a.pt"), open_split(tmp_path / "p.pt")
    assert a.spec.std == (0.2023, 0.1994, 0.2010) and p.spec.std == (0.2470, 0.2435, 0.2616)
    assert a.spec.mean == p.spec.mean
    assert not torch.equal(a.eval_inputs(torch.arange(4)), p.eval_inputs(torch.arange(4)))


def test_authors_cutout_is_black_before_normalization_and_autoaugment_fills_grey():
    x = torch.full((6, 3, 32, 32), 200, dtype=torch.uint8)
    out = augmented_input("autoaugment_cutout", CIFAR, x, torch.Generator().manual_seed(0), "authors")
    black = to_input(CIFAR, torch.zeros(1, 3, 1, 1, dtype=torch.uint8)).flatten()
    holes = (out == black.view(1, 3, 1, 1)).all(1)  # pixels at normalized black
    assert holes.flatten(1).any(1).all()  # every image got its (black) hole
    project = augmented_input("autoaugment_cutout", CIFAR, x, torch.Generator().manual_seed(0))
    assert ((project == 0).all(1)).flatten(1).any(1).all()  # the project's hole: the mean pixel (0 after normalizing)
    # AutoAugment's fill: a rotation / shear / translate moves fill pixels in at the borders
    img = torch.full((1, 3, 32, 32), 200, dtype=torch.uint8)
    filled = {int(v) for s in range(40) for v in auto_augment(img, torch.Generator().manual_seed(s), fill=128).unique()}
    assert 128 in filled
    plain = {int(v) for s in range(40) for v in auto_augment(img, torch.Generator().manual_seed(s)).unique()}
    assert 128 not in plain


def test_the_report_adds_the_protocol_notes_only_for_the_authors_protocol():
    from seenn.report.provenance import METHOD_NOTES, method_notes

    assert method_notes({"data": {"protocol": "project"}}) == METHOD_NOTES  # the default report keeps its text
    notes = method_notes({"data": {"protocol": "authors"}})
    assert notes.startswith(METHOD_NOTES) and "val = test" in notes and "0.2023" in notes
