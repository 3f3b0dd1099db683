"""Every saved file kind (artifacts.py) round-trips, and a truncated or wrong-kind file stops with
one line naming the file."""

import pandas as pd
import pytest
import torch

from seenn.common import artifacts
from seenn.data import files
from seenn.common.errors import SeennError
from seenn.common.io import load_checked
from seenn.data.registry import get_spec
from seenn.loops.predict import load_snn
from seenn.methods.conversion import convert, load_ann
from seenn.methods.policy.loading import load_policies
from seenn.models import build_snn
from seenn.models.policy import build_policy
from seenn.models.qcfs import build_qcfs_ann

DIGITS = get_spec("digits")
MODEL = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}
NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
POLICY_CFG = {"policy_stem_channels": 2, "policy_widths": [2, 4, 4], "policy_stem_stride": 1}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_split_round_trips_and_names_a_truncated_file(tmp_path):
    x = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6)
    path = files.split_path(tmp_path, "val")
    digest = files.save_split(path, "digits", "val", x, y)
    spec, x2, y2 = files.load_split(path)
    assert spec == DIGITS and torch.equal(x2, x) and torch.equal(y2, y) and len(digest) == 64
    _truncate(path)
    with pytest.raises(SeennError, match=rf"corrupt or truncated prepared dataset split {path}.*prepare_data"):
        files.load_split(path)


def test_snn_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    net = build_snn(MODEL, NEURON, 1, 10)
    path = tmp_path / "snn.pt"
    artifacts.save_snn(path, net, model_cfg=MODEL, neuron_cfg=NEURON, timesteps=3, spec=DIGITS)
    ck = artifacts.load_snn_checkpoint(path, DIGITS)
    assert {k: ck[k] for k in ("kind", "model", "neuron", "timesteps", "dataset", "num_classes")} == {
        "kind": "snn", "model": MODEL, "neuron": NEURON, "timesteps": 3, "dataset": "digits", "num_classes": 10}
    model, ck2 = load_snn(path, DIGITS)
    assert _same_weights(model, net) and ck2["timesteps"] == 3


def test_ann_and_converted_checkpoints_round_trip(tmp_path):
    torch.manual_seed(0)
    ann = build_qcfs_ann(MODEL, 4, 1.0, 1, 10)
    artifacts.save_ann(tmp_path / "ann.pt", ann, model_cfg=MODEL, levels=4, spec=DIGITS)
    ann2, ck = load_ann(tmp_path / "ann.pt", DIGITS)
    assert _same_weights(ann2, ann) and ck["kind"] == "qcfs_ann" and ck["levels"] == 4
    snn = convert(ann.eval())
    artifacts.save_converted(tmp_path / "snn.pt", snn, model_cfg=MODEL, levels=4, timesteps=8, spec=DIGITS)
    snn2, ck = load_snn(tmp_path / "snn.pt", DIGITS)
    assert _same_weights(snn2, snn) and ck["kind"] == "converted" and ck["stepwise"] is True and ck["timesteps"] == 8


def test_policies_round_trip(tmp_path):
    torch.manual_seed(0)
    grid = [1, 2, 4]
    net = build_policy(1, len(grid), 2, [2, 4, 4], 1, grid)
    entry = {"beta": 1.0, "estimator": "expected", "train_split": "val", "sample_weighting": False, "variant": "pow2",
             "r_t1": 0.5, "state_dict": net.state_dict()}
    artifacts.save_policies(tmp_path / "p.pt", [entry], cfg=POLICY_CFG, in_channels=1, timesteps=4, grid=grid,
                            dataset="digits")
    obj = artifacts.load_policy_file(tmp_path / "p.pt")
    assert obj["kind"] == "policies" and obj["actions"] == 4 and obj["action_grid"] == grid
    assert {k: obj[k] for k in POLICY_CFG} == POLICY_CFG and obj["entries"][0]["variant"] == "pow2"
    _, (net2,) = load_policies(tmp_path / "p.pt")
    assert _same_weights(net2, net)


def test_logits_round_trip(tmp_path):
    z = torch.randn(5, 3, 10).cumsum(1)
    y = torch.tensor([0, 1, 2, 3, 4])
    artifacts.save_logits(tmp_path / "logits_val.pt", z, y)
    z2, y2 = artifacts.load_logits(tmp_path / "logits_val.pt")
    assert torch.equal(z2, z) and torch.equal(y2, y)


def test_epoch_checkpoints_keep_the_newest(tmp_path):
    for epoch in (1, 2, 3):
        artifacts.save_epoch_checkpoint(tmp_path, epoch, {"fingerprint": "f", "epoch": epoch}, keep=2)
    assert [p.name for p in artifacts.epoch_checkpoints(tmp_path)] == ["epoch_0002.pt", "epoch_0003.pt"]
    assert artifacts.load_epoch_checkpoint(artifacts.epoch_checkpoint_path(tmp_path, 3))["epoch"] == 3
    assert artifacts.epoch_checkpoints(tmp_path / "none") == []


def test_tables_and_the_empty_training_log(tmp_path):
    rows = [{"epoch": 1, "lr": 0.1, "train_loss": 1 / 3, "train_acc": 50.0, "val_acc": 12.5}]
    artifacts.write_train_log(tmp_path / "log.csv", rows)
    assert (tmp_path / "log.csv").read_text() == "epoch,lr,train_loss,train_acc,val_acc\n1,0.100000,0.333333,50.000000,12.500000\n"
    artifacts.write_train_log(tmp_path / "empty.csv", [])
    assert (tmp_path / "empty.csv").read_text() == ",".join(artifacts.TRAIN_LOG_COLUMNS) + "\n"
    assert list(artifacts.read_csv(tmp_path / "empty.csv").columns) == list(artifacts.TRAIN_LOG_COLUMNS)
    frame = pd.DataFrame(rows)
    artifacts.write_csv(tmp_path / "frame.csv", frame)
    assert (tmp_path / "frame.csv").read_bytes() == (tmp_path / "log.csv").read_bytes()
    artifacts.copy_text(tmp_path / "log.csv", tmp_path / "copy.csv")
    assert (tmp_path / "copy.csv").read_bytes() == (tmp_path / "log.csv").read_bytes()
    with pytest.raises(SeennError, match=rf"missing table {tmp_path / 'nope.csv'}"):
        artifacts.read_csv(tmp_path / "nope.csv")


def _files(tmp_path) -> dict:
    """One file of each checked kind, by loader."""
    torch.manual_seed(0)
    net = build_snn(MODEL, NEURON, 1, 10)
    artifacts.save_snn(tmp_path / "snn.pt", net, model_cfg=MODEL, neuron_cfg=NEURON, timesteps=2, spec=DIGITS)
    artifacts.save_ann(tmp_path / "ann.pt", build_qcfs_ann(MODEL, 4, 1.0, 1, 10), model_cfg=MODEL, levels=4, spec=DIGITS)
    artifacts.save_policies(tmp_path / "policies.pt", [], cfg=POLICY_CFG, in_channels=1, timesteps=2, grid=[1, 2],
                            dataset="digits")
    artifacts.save_logits(tmp_path / "logits.pt", torch.zeros(2, 2, 10), torch.zeros(2, dtype=torch.long))
    return {"snn": lambda p: artifacts.load_snn_checkpoint(p, DIGITS),
            "ann": lambda p: artifacts.load_ann_checkpoint(p, DIGITS),
            "policies": artifacts.load_policy_file, "logits": artifacts.load_logits}


@pytest.mark.parametrize("name, message", [
    ("snn", "corrupt or truncated SNN checkpoint"), ("ann", "corrupt or truncated ANN checkpoint"),
    ("policies", "corrupt or truncated SEENN-II policies"), ("logits", "corrupt or truncated per-timestep logits")])
def test_a_truncated_file_is_named(tmp_path, name, message):
    load = _files(tmp_path)[name]
    path = tmp_path / f"{name}.pt"
    load(path)  # intact: loads
    _truncate(path)
    with pytest.raises(SeennError, match=rf"{message} {path} .*delete it and rerun"):
        load(path)


@pytest.mark.parametrize("name, wrong, message", [
    ("snn", "ann", r"is not an SNN checkpoint \(kind='qcfs_ann'\)"),
    ("ann", "snn", r"is not an ANN checkpoint \(kind='snn'\)"),
    ("policies", "logits", r"is not a SEENN-II policy file \(kind=None\)"),
    ("logits", "snn", "is not a per-timestep logits file")])
def test_a_file_of_another_kind_is_named(tmp_path, name, wrong, message):
    load = _files(tmp_path)[name]
    path = tmp_path / f"{wrong}.pt"
    with pytest.raises(SeennError, match=rf"{path} {message}.*delete it and rerun"):
        load(path)


def test_a_checkpoint_for_another_dataset_is_named(tmp_path):
    _files(tmp_path)
    with pytest.raises(SeennError, match=rf"SNN checkpoint {tmp_path / 'snn.pt'} was trained on 'digits'"):
        artifacts.load_snn_checkpoint(tmp_path / "snn.pt", get_spec("cifar10"))
    with pytest.raises(SeennError, match=rf"ANN checkpoint {tmp_path / 'ann.pt'} was trained on 'digits'"):
        artifacts.load_ann_checkpoint(tmp_path / "ann.pt", get_spec("cifar10"))


def test_formats_are_unchanged(tmp_path):
    """The payload keys of each kind, as the files of earlier runs hold them."""
    _files(tmp_path)
    keys = {name: set(load_checked(tmp_path / f"{name}.pt")) for name in ("snn", "ann", "policies", "logits")}
    assert keys == {
        "snn": {"kind", "state_dict", "model", "neuron", "timesteps", "dataset", "num_classes"},
        "ann": {"kind", "state_dict", "model", "levels", "dataset", "num_classes"},
        "policies": {"kind", "entries", "in_channels", "actions", "action_grid", "dataset", "policy_stem_channels",
                     "policy_stem_stride", "policy_widths"},
        "logits": {"logits", "labels"}}
