import math
import subprocess
import sys

import pytest
import yaml
from conftest import PAPER_CONFIGS, ROOT, paper_config

from seenn.common.errors import SeennError
from seenn.pipeline.config import load_config, load_schema, select_keys, validate_config


def float_keys(node: dict, path: tuple = ()) -> list[tuple]:
    """Paths of every 'type: number' in the schema (an array's items as index 0), so that a new float
    key is covered without editing this file."""
    found = [path] if node.get("type") == "number" else []
    for key, sub in node.get("properties", {}).items():
        found += float_keys(sub, path + (key,))
    if isinstance(node.get("items"), dict):
        found += float_keys(node["items"], path + (0,))
    return found


FLOAT_KEYS = float_keys(load_schema())


def test_default_config_is_valid(default_config):
    validate_config(default_config)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["train"].update(foo=1), "unknown key 'train.foo'"),
        (lambda c: c.update(extra=1), "unknown key 'extra'"),
        (lambda c: c["train"].update(lr=-0.1), "'train.lr'"),
        (lambda c: c["train"].update(timesteps=0), "'train.timesteps'"),
        (lambda c: c["train"].update(epochs="ten"), "'train.epochs'"),
        (lambda c: c["seenn1"].update(alpha_min=1.5), "'seenn1.alpha_min'"),
        (lambda c: c["seenn1"].update(alpha_max=0.0), "'seenn1.alpha_max'"),
        (lambda c: c["data"].update(name="imagenet21k"), "'data.name'"),
        (lambda c: c["data"].update(train_size=4800), "exceeds the 5000 digits"),
        (lambda c: c["model"].update(widths=[8, 16, 32, 64]), "'model.widths' has 4 stages"),
        (lambda c: c["neuron"].update(surrogate="sigmoid"), "'neuron.surrogate'"),
        (lambda c: c.pop("train"), "missing key"),
        (lambda c: c["seenn1"].update(scores=[]), "'seenn1.scores'"),
        (lambda c: c["seenn1"].update(calibration="best"), "'seenn1.calibration'"),
        (lambda c: (c["seenn1"].update(calibration="ltt"), c["data"].update(protocol="authors")),
         "'seenn1.calibration' is 'ltt' but 'data.protocol' is 'authors'"),
        (lambda c: c["conformal"].update(checkpoints="every"), "'conformal.checkpoints'"),
        (lambda c: c["conversion"].update(conformal_checkpoints=[0]), "'conversion.conformal_checkpoints'"),
        (lambda c: c["conversion"].update(levels=0), "'conversion.levels'"),
        (lambda c: c["conversion"].update(levels=2.5), "'conversion.levels'"),
        (lambda c: c["conversion"].update(lambda_init=0.0), "'conversion.lambda_init'"),
        (lambda c: c["conversion"].update(lambda_init=-4), "'conversion.lambda_init'"),
        (lambda c: c["conversion"].update(max_timesteps=0), "'conversion.max_timesteps'"),
        (lambda c: c["conversion"].update(max_timesteps=10000), "'conversion.max_timesteps'"),
        (lambda c: c["conversion"].update(epochs=0), "'conversion.epochs'"),
        (lambda c: c["conversion"].update(lr=0), "'conversion.lr'"),
        (lambda c: c["conversion"].update(momentum=1.0), "'conversion.momentum'"),
        (lambda c: c["conversion"].update(weight_decay=-1e-4), "'conversion.weight_decay'"),
        (lambda c: c["conversion"].update(augment="yes"), "'conversion.augment'"),
        (lambda c: c["train"].update(augment=True), "'train.augment'"),
        (lambda c: (c["data"].update(name="cifar10dvs"), c["finetune"].update(augment="crop_flip")),
         "'finetune.augment': augmentation 'crop_flip' is for static images; cifar10dvs holds event frames"),
        (lambda c: c["train"].update(augment="flip_roll_rotate"), "'train.augment': augmentation 'flip_roll_rotate' is for event frames"),
        (lambda c: c["conversion"].update(seenn1_temperature=0), "'conversion.seenn1_temperature'"),
        (lambda c: c["conversion"].update(temperature=8), "unknown key 'conversion.temperature'"),
        (lambda c: c.pop("conversion"), "missing key"),
        (lambda c: c["finetune"].update(epochs=-1), "'finetune.epochs'"),
        (lambda c: c["finetune"].update(loss="tet"), "'finetune.loss'"),
        (lambda c: c["seenn2"].update(estimator="ppo"), "'seenn2.estimator'"),
        (lambda c: c["seenn2"].update(train_split="test"), "'seenn2.train_split'"),
        (lambda c: c["seenn2"].update(betas=[]), "'seenn2.betas'"),
        (lambda c: c["seenn2"].update(betas=[-1.0]), "'seenn2.betas.0'"),
        (lambda c: c["seenn2"].update(reward_base=1.0), "'seenn2.reward_base'"),
        (lambda c: c["seenn2"].update(momentum=1.0), "'seenn2.momentum'"),
        (lambda c: c["seenn2"].update(beta=3.0), "'seenn2.beta' (3.0) must be one of 'seenn2.betas'"),
        (lambda c: c["seenn2"].update(seed=1), "unknown key 'seenn2.seed'"),
        (lambda c: c.update(cpu_kernels="sse2"), "'cpu_kernels'"),
        (lambda c: c.pop("cpu_kernels"), "'cpu_kernels' is a required property"),
        (lambda c: c.pop("config_source"),
         "'config_source' is a required property (`seenn config use [OVERLAY]` writes a params.yaml that records it)"),
        (lambda c: c["config_source"].update(overlay="x.yaml"), "'config_source.overlay' and 'config_source.overlay_sha256'"),
        (lambda c: c["config_source"].update(params_sha256="abc"), "'config_source.params_sha256'"),
        (lambda c: c["config_source"].update(by="hand"), "unknown key 'config_source.by'"),
    ],
)
def test_bad_config_names_the_key(default_config, mutate, message):
    mutate(default_config)
    with pytest.raises(SeennError) as exc:
        validate_config(default_config)
    assert message in str(exc.value)


def test_float_keys_are_found_in_the_schema():
    assert {("train", "lr"), ("seenn1", "temperature"), ("train", "tet_phi"), ("seenn2", "betas", 0)} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("path", FLOAT_KEYS, ids=lambda p: ".".join(map(str, p)))
def test_non_finite_float_is_refused(default_config, path, value):
    node = default_config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(SeennError) as exc:
        validate_config(default_config)
    key = ".".join(map(str, path))
    assert str(exc.value) == f"config: invalid value for '{key}': {value} is not a finite number"


@pytest.mark.parametrize("text", [".nan", ".inf", "-.Inf", ".NaN"])
def test_cli_validate_refuses_yaml_non_finite_numbers(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("temperature: 1.0", f"temperature: {text}", 1))
    r = subprocess.run([sys.executable, "-m", "seenn", "validate", "--config", str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"seenn: error: {path}: invalid value for 'seenn1.temperature': {float(text.replace('.', ''))} is not a finite number"]


@pytest.mark.parametrize("data, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not UTF-8 text (byte 0x89 at offset 0)"),
    (b"\x00\x01\x02\x03", "is not valid YAML: unacceptable character #x0000 at offset 0"),
    (b"seed: [1, 2\n", "is not valid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
], ids=["binary", "control-bytes", "broken-yaml"])
def test_params_file_that_is_not_yaml_text_gives_one_line(tmp_path, data, message):
    path = tmp_path / "p.yaml"
    path.write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "seenn", "validate", "--config", str(path)], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"seenn: error: config file {path} {message}")


def test_duplicate_key_is_refused_with_both_lines(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    seed_line = text.splitlines().index("seed: 1000") + 1
    path = tmp_path / "p.yaml"
    path.write_text(text + "seed: 7\n")
    with pytest.raises(SeennError) as exc:
        load_config(path)
    assert str(exc.value) == (f"config file {path} is not valid YAML: duplicate key 'seed' "
                              f"(lines {seed_line} and {len(text.splitlines()) + 1})")
    lr_line = text.splitlines().index("  lr: 0.1") + 1
    path.write_text(text.replace("  lr: 0.1\n", "  lr: 0.1\n  lr: 0.2\n", 1))  # nested, in train:
    with pytest.raises(SeennError, match=rf"duplicate key 'lr' \(lines {lr_line} and {lr_line + 1}\)"):
        load_config(path)


def test_cli_validate_fails_at_once_with_one_line(tmp_path, default_config):
    default_config["train"]["lr"] = -0.5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(default_config))
    r = subprocess.run([sys.executable, "-m", "seenn", "validate", "--config", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "'train.lr'" in r.stderr and "Traceback" not in r.stderr


def test_missing_and_non_mapping_config_files(tmp_path):
    with pytest.raises(SeennError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SeennError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_select_keys_gives_only_declared_slice(default_config):
    sub = select_keys(default_config, ["seed", "seenn1.temperature"])
    assert sub == {"seed": default_config["seed"], "seenn1": {"temperature": default_config["seenn1"]["temperature"]}}


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.name)
def test_paper_configs_are_valid(path):
    validate_config(paper_config(path))


@pytest.mark.parametrize("path", [p for p in PAPER_CONFIGS if not paper_config(p)["teas"]["only"]], ids=lambda p: p.name)
def test_paper_configs_use_the_authors_policy_optimizer(path):
    """The authors' ee_ii_train: SGD with lr 0.01 and weight decay 5e-4, and no momentum (the SEENN
    rows; the TEAS rows, teas.only, train no policy)."""
    s = paper_config(path)["seenn2"]
    assert (s["lr"], s["weight_decay"], s["momentum"]) == (0.01, 0.0005, 0.0)


def _dvs_list(default_config, where, text="class,file,split\nbird,b0.aedat4,train\nbird,b1.aedat4,test\n") -> dict:
    """The default config reading CIFAR10-DVS with its own split list (a path relative to `where`)."""
    import hashlib

    (where / "lists").mkdir(exist_ok=True)
    (where / "lists" / "own.txt").write_text(text)
    default_config["data"].update(name="cifar10dvs", split_list="lists/own.txt",
                                  split_list_sha256=hashlib.sha256(text.encode()).hexdigest())
    for section in ("train", "finetune", "conversion"):
        default_config[section]["augment"] = "none"
    default_config["shift"]["enabled"] = False  # pixel noise is for images
    return default_config


def test_the_split_list_keys_default_to_the_committed_list(default_config):
    assert default_config["data"]["split_list"] is None and default_config["data"]["split_list_sha256"] is None
    default_config["data"]["split_list"] = ""  # empty: the committed list too
    validate_config(default_config)


def test_a_pinned_own_split_list_is_valid_from_the_project_directory(default_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    validate_config(_dvs_list(default_config, tmp_path))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(split_list_sha256=None),
     "config: 'data.split_list_sha256' is required when 'data.split_list' is set (lists/own.txt)"),
    (lambda d: d.update(split_list=None), "config: 'data.split_list_sha256' must be null when 'data.split_list' is not set"),
    (lambda d: d.update(split_list="lists/gone.txt"), "config: 'data.split_list': split list lists/gone.txt not found"),
    (lambda d: d.update(split_list_sha256="ab" * 32),
     "config: 'data.split_list_sha256' (abababababab...) does not match the sha256 of 'data.split_list' lists/own.txt"),
    (lambda d: d.update(split_list_sha256="AB" * 32), "config: invalid value for 'data.split_list_sha256'"),
    (lambda d: d.update(split_list=3), "config: invalid value for 'data.split_list'"),
    (lambda d: d.update(name="digits"), "config: 'data.split_list' is for cifar10dvs only, but 'data.name' is 'digits'"),
])
def test_bad_split_list_keys_name_the_key(default_config, tmp_path, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    cfg = _dvs_list(default_config, tmp_path)
    change(cfg["data"])
    with pytest.raises(SeennError) as exc:
        validate_config(cfg)
    assert str(exc.value).startswith(message)


def test_a_malformed_own_split_list_is_refused_at_the_config_check(default_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _dvs_list(default_config, tmp_path, text="class,file,split\nbird,b0.aedat4,holdout\n")
    with pytest.raises(SeennError, match=r"^config: 'data.split_list' lists/own.txt line 2: expected"):
        validate_config(cfg)
