"""A training stage killed with SIGKILL mid-run resumes from its last complete epoch and ends
with byte-identical weights and log to a run never killed."""

import signal
import subprocess
import time

import pytest

from conftest import ENV, make_project, sh, tiny_config

pytestmark = pytest.mark.slow


def _config():
    cfg = tiny_config()
    cfg["train"]["epochs"] = 4
    return cfg


def test_sigkill_then_rerun_resumes_and_matches_uninterrupted(tmp_path):
    ref = make_project(tmp_path / "ref", _config())
    sh(ref, "seenn", "run", "prepare_data")
    sh(ref, "seenn", "run", "train_snn")

    cut = make_project(tmp_path / "cut", _config())
    sh(cut, "seenn", "run", "prepare_data")
    ckpt_dir = cut / "results/checkpoints/train_snn"
    proc = subprocess.Popen(["seenn", "run", "train_snn"], cwd=cut, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (ckpt_dir / "epoch_0002.pt").exists():
        assert proc.poll() is None, "training finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "results/direct/snn.pt").exists()  # nothing that looks finished

    sh(cut, "seenn", "run", "train_snn")
    log = (cut / "logs/train_snn.log").read_text()
    assert "resuming from checkpoint" in log and "epoch 2 of 4 done" in log
    for out in ("results/direct/snn.pt", "results/direct/train_log.csv"):
        assert (cut / out).read_bytes() == (ref / out).read_bytes(), out
