"""Data-parallel training under torchrun on CPU (gloo): two processes train one stage, only rank 0
writes, and a run killed after its first epoch resumes on both ranks from the same checkpoint and
ends byte-identical to an uninterrupted two-process run, with the compiled step and the eager
one. Also the GPU slot allocator, with fake slots and concurrent processes."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import ENV, ROOT, make_project, sh, tiny_config

from seenn.common import distributed
from seenn.common.errors import SeennError
from seenn.loops.fit import _check_rank_batches
from seenn.pipeline import gpu_slots

OUTPUTS = ("results/direct/snn.pt", "results/direct/train_log.csv")
CKPT = "results/checkpoints/train_snn"


def _config(compile: bool = False):
    cfg = tiny_config()
    cfg["train"]["compile"] = compile
    cfg["device"] = "cpu"
    cfg["data"].update(train_size=320, val_size=60, test_size=60)
    cfg["model"].update(stem_channels=4, widths=[8], blocks=[1])
    cfg["train"].update(epochs=3, batch_size=32, timesteps=2)
    return cfg


def _project(path, prepared=None, compile: bool = False):
    proj = make_project(path, _config(compile))
    if prepared is None:
        sh(proj, "seenn", "run", "prepare_data")
    else:
        shutil.copytree(prepared / "data", proj / "data")
    return proj


def _kill_after_epoch_one(cwd, *cmd) -> None:
    """Start `cmd` (torchrun and its ranks); SIGKILL all of them once epoch 1 is checkpointed."""
    ckpt = cwd / CKPT / "epoch_0001.pt"
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300  # compiled: both ranks compile first
    while not ckpt.exists():
        assert proc.poll() is None, "training finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    import psutil

    # torchrun starts each rank in a session of its own: kill every process of the run, as a crash would
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:
        p.kill()
    psutil.wait_procs(tree, timeout=30)
    proc.wait()
    assert not (cwd / OUTPUTS[0]).exists()


def test_two_process_torchrun_trains_and_resumes_to_the_same_bytes(tmp_path):
    """With the compiled step (train.compile, as the paper rows train: TorchDynamo splits the graph
    at DDP's gradient buckets); the eager step's resume is the next test's."""
    run = ("seenn", "run", "train_snn", "--gpus", "2")  # on CPU: two gloo processes
    ref = _project(tmp_path / "ref", compile=True)
    r = sh(ref, *run)
    log = (ref / "logs/train_snn.log").read_text()
    assert "relaunching under torchrun: 2 processes" in log and "2 processes)" in log
    assert "train_snn: the training step compiled (train.compile)" in log
    assert "rank 1" not in log  # rank 0 alone writes the log file
    assert [p.name for p in sorted((ref / CKPT).iterdir())] == ["epoch_0002.pt", "epoch_0003.pt"]
    rows = (ref / OUTPUTS[1]).read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch,")

    cut = _project(tmp_path / "cut", prepared=ref, compile=True)
    _kill_after_epoch_one(cut, *run)
    sh(cut, *run)
    log = (cut / "logs/train_snn.log").read_text()
    assert "resuming from checkpoint" in log and "epoch 1 of 3 done" in log
    for out in OUTPUTS:
        assert (cut / out).read_bytes() == (ref / out).read_bytes(), out


def test_one_rank_killed_stops_the_survivor_and_the_rerun_resumes_to_the_same_bytes(tmp_path):
    """Rank 1 killed mid-epoch while rank 0 lives (the eager step): torchrun stops the survivor within 60 s (no hang
    in a collective), the stage exits non-zero with one line of its own, and rerunning the same
    command resumes from the last complete epoch and ends byte-identical to an uninterrupted run."""
    import psutil

    run = ("seenn", "run", "train_snn", "--gpus", "2")
    ref = _project(tmp_path / "ref")
    sh(ref, *run)
    cut = _project(tmp_path / "cut", prepared=ref)
    ckpt = cut / CKPT / "epoch_0001.pt"
    proc = subprocess.Popen(list(run), cwd=cut, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ckpt.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    ranks = [p for p in psutil.Process(proc.pid).children(recursive=True)
             if p.environ().get("LOCAL_RANK") == "1" and "seenn" in " ".join(p.cmdline())]
    assert len(ranks) == 1
    killed = time.time()
    ranks[0].kill()
    err = proc.communicate(timeout=120)[1]
    assert time.time() - killed < 60, "the surviving rank hung"
    assert proc.returncode != 0
    assert err.strip().splitlines()[-1].startswith("seenn: error: stage train_snn: a process of its 2-process run stopped")
    assert not (cut / OUTPUTS[0]).exists()
    sh(cut, *run)
    log = (cut / "logs/train_snn.log").read_text()
    assert "resuming from checkpoint" in log
    for out in OUTPUTS:
        assert (cut / out).read_bytes() == (ref / out).read_bytes(), out


def test_a_batch_that_leaves_a_rank_empty_is_refused():
    _check_rank_batches(320, 32, 2)
    _check_rank_batches(321, 1, 1)
    with pytest.raises(SeennError, match="batch_size 32 over 321 training samples leaves a batch of 1 samples for 2"):
        _check_rank_batches(321, 32, 2)
    with pytest.raises(SeennError, match="batch_size 2 .* for 4 processes"):
        _check_rank_batches(8, 2, 4)


def test_one_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.world_size() == 1 and distributed.is_main() and not distributed.active()
    idx = torch.arange(5)
    assert distributed.rank_slice(idx) is idx and distributed.sum_over_ranks(1.5, 2) == [1.5, 2]
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.torchrun_argv(8, ["run", "train_snn"])[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8", "-m", "seenn", "run", "train_snn"]


def test_another_rank_writes_nothing(tmp_path, monkeypatch):
    from seenn.common.io import write_text

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    write_text(tmp_path / "out.txt", "x")
    assert not (tmp_path / "out.txt").exists() and list(tmp_path.iterdir()) == []
    monkeypatch.setenv("RANK", "0")
    write_text(tmp_path / "out.txt", "x")
    assert (tmp_path / "out.txt").read_text() == "x"


# --- GPU slots ----------------------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import json, os, sys, time
    from seenn.pipeline import gpu_slots
    t0 = time.time()
    ids = gpu_slots.acquire(int(sys.argv[1]), timeout_s=60, poll_s=0.02)
    t1 = time.time()
    time.sleep(float(sys.argv[2]))
    print(json.dumps({"ids": ids, "visible": os.environ["CUDA_VISIBLE_DEVICES"], "start": t1, "end": time.time(),
                      "asked": t0}))
""")


def test_concurrent_jobs_get_disjoint_gpu_slots_and_wait_for_a_free_one(tmp_path):
    env = {**ENV, gpu_slots.SLOTS_ENV: "3,5", gpu_slots.LOCK_DIR_ENV: str(tmp_path / "locks")}
    procs = [subprocess.Popen([sys.executable, "-c", _HOLDER, n, "1.0"], env=env, stdout=subprocess.PIPE, text=True)
             for n in ("1", "1", "1", "2")]
    jobs = [json.loads(p.communicate(timeout=90)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    for job in jobs:
        assert job["visible"] == ",".join(job["ids"]) and set(job["ids"]) <= {"3", "5"}
    assert sorted(len(j["ids"]) for j in jobs) == [1, 1, 1, 2]
    for i, a in enumerate(jobs):  # no GPU held by two jobs at once
        for b in jobs[i + 1:]:
            if set(a["ids"]) & set(b["ids"]):
                assert a["end"] <= b["start"] + 0.01 or b["end"] <= a["start"] + 0.01, (a, b)
    assert max(j["start"] - j["asked"] for j in jobs) > 0.5  # four jobs, two GPUs: some waited


def test_no_slots_configured_leaves_cuda_visible_devices_alone(monkeypatch):
    monkeypatch.delenv(gpu_slots.SLOTS_ENV, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    assert gpu_slots.acquire(1) == [] and os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    with pytest.raises(SeennError, match="needs 3 GPUs but SEENN_GPU_SLOTS lists 2"):
        gpu_slots.acquire(3, slots=["0", "1"])
    monkeypatch.setenv(gpu_slots.SLOTS_ENV, "0,0")
    with pytest.raises(SeennError, match="names a GPU twice"):
        gpu_slots.configured_slots()


@pytest.mark.parametrize("slots", ["zero,one", "0,gpu1", "0,-1", "GPU-"])
def test_gpu_slots_that_cuda_would_not_understand_are_refused(monkeypatch, tmp_path, slots):
    """Only GPU indices and GPU/MIG UUIDs (what CUDA_VISIBLE_DEVICES takes): anything else would
    hide every GPU, and `device: auto` would train on the CPU without a word. `seenn validate`
    and every stage (through `acquire`) refuse it in one line."""
    monkeypatch.setenv(gpu_slots.SLOTS_ENV, slots)
    with pytest.raises(SeennError, match="is not a GPU index or a GPU/MIG UUID"):
        gpu_slots.acquire(1)
    r = subprocess.run([sys.executable, "-m", "seenn", "validate"], cwd=ROOT, env={**ENV, gpu_slots.SLOTS_ENV: slots},
                       capture_output=True, text=True)
    assert r.returncode != 0 and "is not a GPU index or a GPU/MIG UUID" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("slots", ["0,1", "3", "GPU-8f3c2a1e-59b4-4c2e-9d1a-7a6b5c4d3e2f",
                                   "MIG-GPU-8f3c2a1e-59b4-4c2e-9d1a-7a6b5c4d3e2f/1/0", "MIG-8f3c2a1e-59b4-4c2e-9d1a-7a6b5c4d3e2f"])
def test_gpu_indices_and_uuids_are_accepted(monkeypatch, slots):
    monkeypatch.setenv(gpu_slots.SLOTS_ENV, slots)
    assert gpu_slots.configured_slots() == slots.split(",")


def test_gpu_ids_the_machine_lacks_are_refused(monkeypatch):
    present = {"0", "1", "GPU-8f3c2a1e-59b4-4c2e-9d1a-7a6b5c4d3e2f", "GPU-00000000-1111-2222-3333-444444444444"}
    gpu_slots.check_present(["1", "0", "GPU-8f3c2a1e-59b4-4c2e-9d1a-7a6b5c4d3e2f"], present)
    with pytest.raises(SeennError, match=r"names 4, GPU-dead, which this machine lacks \(its GPUs: 0, 1\)"):
        gpu_slots.check_present(["0", "4", "GPU-dead"], present)
    gpu_slots.check_present(["7"], None)  # no nvidia-smi: nothing to check against
    monkeypatch.setattr(gpu_slots, "machine_gpus", lambda: {"0"})
    monkeypatch.setenv(gpu_slots.SLOTS_ENV, "0,3")
    with pytest.raises(SeennError, match="names 3, which this machine lacks"):
        gpu_slots.acquire(1)
