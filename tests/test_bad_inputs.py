"""Bad data, files and checkpoints stop early with one line naming the problem."""

import subprocess

import pytest
import torch
from conftest import ENV, make_project, sh, tiny_config

from seenn.common.artifacts import save_snn
from seenn.common.errors import SeennError
from seenn.common.io import save_checked
from seenn.data.files import load_split
from seenn.data.registry import get_spec
from seenn.data.spec import validate_split
from seenn.loops.predict import load_snn
from seenn.loops.resume import latest_checkpoint
from seenn.models import build_snn

DIGITS = get_spec("digits")
GOOD_X = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
GOOD_Y = torch.tensor([0, 1, 2, 9])


@pytest.mark.parametrize(
    "x, y, message",
    [
        (torch.zeros(4, 3, 28, 28, dtype=torch.uint8), GOOD_Y, r"shape \(3, 28, 28\), expected \(1, 28, 28\)"),
        (torch.zeros(4, 1, 28, 28), GOOD_Y, "dtype torch.float32, expected torch.uint8"),
        (GOOD_X, torch.tensor([0, 1, 2, 10]), r"labels must lie in \[0, 9\], found \[0, 10\]"),
        (GOOD_X, torch.tensor([0, -1, 2, 3]), r"labels must lie in \[0, 9\]"),
        (GOOD_X, GOOD_Y.float(), "labels must be int64"),
        (GOOD_X, GOOD_Y[:3], "labels must be int64 of shape"),
        (GOOD_X[:0], GOOD_Y[:0], "is empty"),
    ],
)
def test_bad_split_names_split_and_problem(x, y, message):
    with pytest.raises(SeennError, match=message) as exc:
        validate_split(DIGITS, "train", x, y, source="somewhere.pt")
    assert "digits train split (somewhere.pt)" in str(exc.value)


def test_unknown_dataset_name():
    with pytest.raises(SeennError, match="unknown dataset 'data.name: svhn'"):
        get_spec("svhn")


def test_prepared_file_from_elsewhere_is_named(tmp_path):
    save_checked(tmp_path / "train.pt", {"weights": torch.zeros(2)})
    with pytest.raises(SeennError, match=r"train\.pt lacks 'dataset'.*rerun the prepare_data stage"):
        load_split(tmp_path / "train.pt")


def _model(widths):
    return build_snn({"arch": "resnet", "stem_channels": 4, "widths": widths, "blocks": [1] * len(widths)},
                     {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}, 1, 10)


def test_checkpoint_for_other_architecture_or_dataset(tmp_path):
    path = tmp_path / "snn.pt"
    model_cfg = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}
    save_snn(path, _model([4, 8]), model_cfg=model_cfg, neuron_cfg={"decay": 0.5, "threshold": 1.0,
             "surrogate": "triangle", "surrogate_width": 1.0}, timesteps=2, spec=DIGITS)
    load_snn(path, DIGITS)  # fits
    with pytest.raises(SeennError, match="trained on 'digits' .* but the data is 'cifar10'"):
        load_snn(path, get_spec("cifar10"))
    # Weights of another architecture under this checkpoint's description:
    save_snn(path, _model([4, 16]), model_cfg=model_cfg, neuron_cfg={"decay": 0.5, "threshold": 1.0,
             "surrogate": "triangle", "surrogate_width": 1.0}, timesteps=2, spec=DIGITS)
    with pytest.raises(SeennError, match=r"snn\.pt does not fit the architecture"):
        load_snn(path, DIGITS)


def test_resume_ignores_checkpoint_of_other_settings(tmp_path):
    save_checked(tmp_path / "epoch_0003.pt", {"fingerprint": "other-T", "epoch": 3})
    assert latest_checkpoint(tmp_path, "this-run") is None
    save_checked(tmp_path / "epoch_0001.pt", {"fingerprint": "this-run", "epoch": 1})
    assert latest_checkpoint(tmp_path, "this-run")[0] == 1


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    cwd = make_project(tmp_path_factory.mktemp("bad") / "p", tiny_config())
    sh(cwd, "seenn", "run", "prepare_data")
    return cwd


def _one_line_error(cwd, *args) -> str:
    r = subprocess.run(["seenn", *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("seenn: error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    return lines[0]


def test_stage_with_missing_input_says_which_stage_to_run(prepared):
    msg = _one_line_error(prepared, "run", "evaluate_direct")
    assert "input 'model' (results/direct/snn.pt) is missing" in msg


def test_truncated_checkpoint_gives_one_line_naming_the_file(prepared):
    path = prepared / "results/direct/snn.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"SEENN1\n" + b"0" * 93)  # what `truncate -s 100` leaves
    msg = _one_line_error(prepared, "run", "evaluate_direct")
    assert "corrupt or truncated SNN checkpoint results/direct/snn.pt" in msg and "delete it and rerun" in msg
    path.unlink()


def test_truncated_prepared_split_is_named(prepared):
    path = prepared / "data/prepared/val.pt"
    data = path.read_bytes()
    path.write_bytes(data[:100])
    try:
        msg = _one_line_error(prepared, "run", "train_snn")
        assert "data/prepared/val.pt" in msg and "prepare_data" in msg
    finally:
        path.write_bytes(data)


def test_unknown_stage(prepared):
    assert "unknown stage 'trian_snn'" in _one_line_error(prepared, "run", "trian_snn")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("front") / "p", tiny_config())


def test_duplicate_key_is_refused_by_both_front_doors(project):
    """Snakemake alone would keep the last value; DVC's reader refuses: both must refuse the same file."""
    params = project / "params.yaml"
    original = params.read_text()
    params.write_text(original + "seed: 7\n")
    try:
        lines = len(original.splitlines())
        seed_line = original.splitlines().index(f"seed: {tiny_config()['seed']}") + 1
        r = sh(project, "snakemake", "-n", check=False)
        assert r.returncode != 0
        assert r.stderr.strip().splitlines() == [
            f"seenn: error: config file params.yaml is not valid YAML: duplicate key 'seed' (lines {seed_line} and {lines + 1})"]
        r = sh(project, "dvc", "status", check=False)
        assert r.returncode != 0 and 'found duplicate key "seed"' in r.stderr
        assert "duplicate key 'seed'" in _one_line_error(project, "run", "prepare_data")
    finally:
        params.write_text(original)
    assert sh(project, "snakemake", "-n").returncode == 0  # the same project is accepted without the duplicate


def test_binary_params_file_stops_snakemake_with_one_line(project):
    params = project / "params.yaml"
    original = params.read_text()
    params.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    try:
        r = sh(project, "snakemake", "-n", check=False)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines() == [
            "seenn: error: config file params.yaml is not UTF-8 text (byte 0x89 at offset 0): is it the right file?"]
    finally:
        params.write_text(original)


def test_an_edited_own_split_list_stops_both_front_doors_with_one_line(tmp_path):
    """A CIFAR10-DVS project with its own split list: a list that no longer matches its pinned
    sha256 stops Snakemake (at the config check, before any job) and `seenn run` with one line."""
    import hashlib

    from seenn.data.cifar10dvs import split_list_text

    text = split_list_text([f"{c}/r{i}.aedat4" for c in ("airplane", "bird") for i in range(10)])
    cfg = tiny_config()
    cfg["data"].update(name="cifar10dvs", root=str(tmp_path / "raw"), split_list="splits/own.txt",
                       split_list_sha256=hashlib.sha256(text.encode()).hexdigest())
    for section in ("train", "finetune", "conversion"):
        cfg[section]["augment"] = "none"
    cfg["shift"]["enabled"] = False  # pixel noise is for images
    cwd = make_project(tmp_path / "p", cfg)
    (cwd / "splits").mkdir()
    (cwd / "splits/own.txt").write_text(text.replace(",test\n", ",train\n", 1))
    r = sh(cwd, "snakemake", "-n", check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("seenn: error: params.yaml: 'data.split_list_sha256' (") and "splits/own.txt" in line
    assert "does not match the sha256 of 'data.split_list' splits/own.txt" in _one_line_error(cwd, "run", "prepare_data")
    (cwd / "splits/own.txt").unlink()
    assert "'data.split_list': split list splits/own.txt not found" in _one_line_error(cwd, "validate")
