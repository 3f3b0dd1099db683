"""A training stage killed with SIGKILL mid-run resumes from its last complete epoch and ends
with byte-identical weights and log to a run never killed; so does a killed Snakemake, after the
README's `snakemake --unlock`."""

import os
import signal
import subprocess
import time

import pytest
import yaml
from conftest import ENV, make_project, sh, tiny_config

pytestmark = pytest.mark.slow
OUTPUTS = ("results/direct/snn.pt", "results/direct/train_log.csv")


def _config():
    cfg = tiny_config()
    cfg["train"]["epochs"] = 4
    return cfg


@pytest.fixture(scope="module")
def reference(tiny_project):
    """The run never killed: the session's tiny project, whose config is this one. Snakemake ran
    its train_snn; the first test resumes with `seenn run` alone, so it also shows that a stage
    gives the same bytes under Snakemake and without it."""
    assert yaml.safe_load((tiny_project / "params.yaml").read_text()) == _config()
    return tiny_project


def _kill_after_epoch_two(cwd, *cmd) -> None:
    """Start `cmd` in its own process group and SIGKILL the whole group once epoch 2 is checkpointed."""
    ckpt = cwd / "results/checkpoints/train_snn/epoch_0002.pt"
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while not ckpt.exists():
        assert proc.poll() is None, "training finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cwd / OUTPUTS[0]).exists()  # nothing that looks finished


def _assert_resumed_and_identical(cut, ref) -> None:
    log = (cut / "logs/train_snn.log").read_text()
    assert "resuming from checkpoint" in log and "epoch 2 of 4 done" in log
    for out in OUTPUTS:
        assert (cut / out).read_bytes() == (ref / out).read_bytes(), out


def test_sigkill_then_rerun_resumes_and_matches_uninterrupted(tmp_path, reference):
    cut = make_project(tmp_path / "cut", _config())
    sh(cut, "seenn", "run", "prepare_data")
    _kill_after_epoch_two(cut, "seenn", "run", "train_snn")
    sh(cut, "seenn", "run", "train_snn")
    _assert_resumed_and_identical(cut, reference)


def test_killed_snakemake_unlock_then_resume_as_the_readme_says(tmp_path, reference):
    cut = make_project(tmp_path / "cut", _config())
    _kill_after_epoch_two(cut, "snakemake", "--cores", "2", "train_snn")
    r = sh(cut, "snakemake", "--cores", "2", "train_snn", check=False)
    assert r.returncode != 0 and "--unlock" in r.stderr and "cannot be locked" in r.stderr  # the lock outlived the kill
    r = sh(cut, "snakemake", "--unlock")  # verbatim, no --cores
    assert "Unlocked working directory" in r.stdout + r.stderr
    sh(cut, "snakemake", "--cores", "2", "train_snn")
    _assert_resumed_and_identical(cut, reference)
    r = sh(cut, "snakemake", "-n", "train_snn")  # a dry run needs no --cores either
    assert "Nothing to be done" in r.stdout + r.stderr


def test_sigterm_mid_epoch_then_rerun_resumes_at_that_step_and_matches_uninterrupted(tmp_path, reference):
    """A SLURM job at its time limit gets SIGTERM (then SIGKILL): `seenn run` writes a checkpoint at
    the step it reached and exits with one line; the next submission resumes from that step."""
    cut = make_project(tmp_path / "cut", _config())
    sh(cut, "seenn", "run", "prepare_data")
    ckpt = cut / "results/checkpoints/train_snn/epoch_0001.pt"
    proc = subprocess.Popen(["seenn", "run", "train_snn"], cwd=cut, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not ckpt.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.2)  # into epoch 2
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode != 0, "training finished before the signal"
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert len(lines) == 1 and "stopped by SIGTERM in epoch" in lines[0] and "rerun the same command" in lines[0]
    assert (cut / "results/checkpoints/train_snn/partial.pt").exists()
    assert not (cut / OUTPUTS[0]).exists()
    sh(cut, "seenn", "run", "train_snn")
    log = (cut / "logs/train_snn.log").read_text()
    assert "partial.pt (epoch" in log
    for out in OUTPUTS:
        assert (cut / out).read_bytes() == (reference / out).read_bytes(), out
