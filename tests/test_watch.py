"""Long runs fail loudly (issue 35, item 1): a non-finite loss or gradient stops every training
loop at the next host read with one line naming stage, epoch, step, loss, learning rate and
precision; the last complete checkpoint stays as it was; fp16 skipped steps are counted, and
too many in a row stop the run."""

import re
from pathlib import Path

import pytest
import torch

from seenn.common.artifacts import epoch_checkpoints
from seenn.common.errors import SeennError
from seenn.data.registry import get_spec
from seenn.data.source import TensorSource
from seenn.loops.fit import fit, train_one_epoch
from seenn.loops.resume import result_settings
from seenn.loops.watch import NonFiniteError, TrainingWatch
from seenn.models import build_snn
from seenn.snn.losses import mean_loss, snn_criterion

ROOT = Path(__file__).resolve().parents[1]
ARCH = {"arch": "resnet", "stem_channels": 4, "widths": [4], "blocks": [1]}
NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
CFG = {"batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "augment": "none"}


def _data():
    x = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    y = torch.arange(32) % 10
    spec = get_spec("digits")
    return TensorSource(spec, x, y, "train", "memory"), TensorSource(spec, x[:8], y[:8], "val", "memory")


def _model():
    torch.manual_seed(0)
    return build_snn(ARCH, NEURON, 1, 10)


def _fit(model, tmp_path, epochs, **kw):
    train, val = _data()
    return fit(model, snn_criterion("cumulative"), train, val, timesteps=2, cfg={**CFG, "epochs": epochs}, seed=1,
               device=torch.device("cpu"), ckpt_dir=tmp_path, fp="f", desc="train_snn", **kw)


class _PoisonAt:
    """A forward pre-hook that puts a NaN into the input at one call (a bad batch)."""

    def __init__(self, call: int):
        self.call, self.calls = call, 0

    def __call__(self, module, args):
        self.calls += 1
        if self.calls == self.call:
            x = args[0].clone()
            x.view(-1)[0] = float("nan")
            return (x,) + args[1:]
        return None


@pytest.mark.parametrize("log_every", [1, 3])
def test_a_nan_batch_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, log_every):
    model = _model()
    _fit(model, tmp_path, 1, log_every=log_every)  # epoch 1 completes and is checkpointed
    (ck,) = epoch_checkpoints(tmp_path)
    saved = ck.read_bytes()
    model = _model()
    poison = _PoisonAt(call=2)  # the run resumes at epoch 2: its 2nd batch
    model.stem.register_forward_pre_hook(poison)
    with pytest.raises(NonFiniteError) as info:
        _fit(model, tmp_path, 2, log_every=log_every)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("train_snn: non-finite loss or gradient at epoch 2, step 2 ")
    # the NaN pixel spikes nowhere (NaN > threshold is False), so the loss stays finite: the gradient catches it
    assert re.search(r"\(loss [0-9.]+, learning rate 0\.00[0-9]+, precision none\)", msg), msg
    assert epoch_checkpoints(tmp_path) == [ck] and ck.read_bytes() == saved


def test_a_nan_weight_stops_the_run_at_the_first_step(tmp_path):
    model = _model()
    with torch.no_grad():
        model.fc.weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="at epoch 1, step 1 "):
        _fit(model, tmp_path, 1, log_every=4)
    assert epoch_checkpoints(tmp_path) == []


def test_a_non_finite_gradient_with_a_finite_loss_is_caught():
    """The loss can be finite while a gradient is not (here: a weight's gradient made inf)."""
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.weight.register_hook(lambda g: g * float("inf"))

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x, t):
            return self.m(x).expand(t, -1, -1)

    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    with pytest.raises(NonFiniteError, match=r"step 1 \(loss [0-9.]+,"):
        train_one_epoch(M(), mean_loss, opt, [(x, y)], torch.device("cpu"), timesteps=1,
                        watch=TrainingWatch("t", torch.device("cpu"), 5, "none"), epoch=1)


def test_the_host_reads_every_log_every_steps(monkeypatch):
    """Nothing is read between log points: the watch's `read` runs at steps log_every, 2 log_every, ..."""
    model = _model()
    train, _ = _data()
    from seenn.loops.fit import ShuffledBatches

    data = ShuffledBatches(train, 4, "none", torch.Generator().manual_seed(0))  # 8 batches
    reads = []
    watch = TrainingWatch("t", torch.device("cpu"), 3, "none")
    monkeypatch.setattr(watch, "read", lambda epoch, where="": reads.append(watch.steps))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    train_one_epoch(model, mean_loss, opt, data, torch.device("cpu"), timesteps=2, watch=watch, epoch=1)
    assert reads == [3, 6, 8]


def test_fp16_skipped_steps_are_counted_and_too_many_in_a_row_stop():
    watch = TrainingWatch("t", torch.device("cpu"), 1, "fp16", max_skips=2)
    one, half = torch.tensor(1.0), torch.tensor(0.5)
    watch.skipped(one, half)
    watch.skipped(one, one)  # not skipped: the run restarts
    watch.skipped(one, half)
    watch.skipped(one, half)
    watch.read(1)
    assert watch.skipped_steps() == 3
    watch.skipped(one, half)
    with pytest.raises(NonFiniteError, match="skipped 3 steps in a row.*at most 2"):
        watch.read(1)


def test_log_interval_and_skip_limit_are_not_part_of_a_checkpoint_fingerprint():
    p = {"loader": {"workers": 2}, "train": {"lr": 0.1, "log_every": 50, "max_skipped_steps": 5}, "seed": 1}
    assert result_settings(p) == {"train": {"lr": 0.1}, "seed": 1}


def test_the_policy_loop_stops_at_a_non_finite_loss(tmp_path):
    from seenn.methods.policy.training import fit_policy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    x[40, 0, 0, 0] = float("nan")  # one bad image, in some batch of the first epoch
    correct = torch.rand(64, 3, generator=g) > 0.3
    cfg = {"epochs": 1, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "reward_base": 2.0,
           "policy_stem_channels": 4, "policy_widths": [4, 8], "policy_stem_stride": 1, "log_every": 2}
    with pytest.raises(NonFiniteError, match=r"^policy: non-finite loss or gradient at epoch 1, step [1-4] "):
        fit_policy(x, correct, cfg=cfg, beta=1.0, estimator="expected", weighting=False, epochs=1, in_channels=1,
                   seed=0, device=torch.device("cpu"), ckpt_dir=tmp_path, fp="t", desc="policy")
    assert epoch_checkpoints(tmp_path) == []


def test_the_teas_loops_stop_at_a_non_finite_weight():
    """TEAS retraining and the MNIST MLP have no checkpoints: the stop comes before anything is written."""
    from seenn.teas.mlp import TeasMLP
    from seenn.teas.procedure import retrain, train_mlp

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(32, 1, 8, 8, generator=g), torch.arange(32) % 5
    mlp = TeasMLP((1, 8, 8), 5, hidden=16)
    with torch.no_grad():
        mlp.fc.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="^teas_train_mnist: non-finite loss or gradient at epoch 1, step 1 "):
        train_mlp(mlp, x, y, x, y, 4, 1, 0.001, 16, 0, log_every=2)
    torch.manual_seed(0)
    net = build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}, NEURON, 1, 5)
    with torch.no_grad():
        net.fc.weight[0, 0] = float("inf")
    cfg = {"epochs": 1, "finetune_epochs": 0, "lambda": 0.1, "lr": 5e-4, "finetune_lr": 1e-4, "decay": 1.0,
           "decay_reading": "lr", "batch_size": 16, "adjust_every": 1, "adjust_layers": 1, "adjust_max_change": 1,
           "adjustment": "shorten", "activity": "layer", "top_window": "full", "temperature": 1.0, "log_every": 2}
    from seenn.teas import layerwise

    windows = [2] * len(layerwise.spiking_layers(net))
    with pytest.raises(NonFiniteError, match=r"^teas retraining: non-finite loss or gradient at epoch 1, step 1 \(retrain\)"):
        retrain(net, x, y, windows, [0.1] * len(windows), None, 2, 0.6, cfg, 0)


OOM = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
       "1.50 GiB is free. Of the allocated memory 70.1 GiB is allocated by PyTorch.")


def _run_stage_with(stage: str, config: dict, run, tmp_path, monkeypatch):
    """`seenn run <stage>` in-process on `config` in tmp_path, the stage's work replaced by `run`
    (its inputs are empty files: the work never reads them)."""
    import dataclasses

    import yaml

    from seenn import cli
    from seenn.pipeline import table

    st = next(s for s in table.build_stages(config) if s.name == stage)
    monkeypatch.chdir(tmp_path)
    for path in st.inputs.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    numbers = tmp_path / "config/paper/numbers.yaml"  # a paper row's report.paper_row is checked against it
    numbers.parent.mkdir(parents=True, exist_ok=True)
    numbers.write_bytes((ROOT / "config/paper/numbers.yaml").read_bytes())
    original = table.build_stages
    monkeypatch.setattr(table, "build_stages", lambda cfg: [dataclasses.replace(s, run=run) if s.name == stage else s
                                                            for s in original(cfg)])
    cli.run_stage(stage, "params.yaml")
    return st


@pytest.mark.parametrize("stage, keys", [("train_snn", {"train.batch_size": 64}),
                                         ("finetune_snn", {"finetune.batch_size": 64}),
                                         ("train_ann", {"conversion.batch_size": 64}),
                                         ("evaluate_direct", {"evaluate.batch_size": 250}),
                                         ("energy", {"engine.energy_batch_size": 250}),
                                         ("latency", {"engine.batch_sizes": [1, 256]})])
def test_out_of_memory_names_the_stage_the_memory_and_the_key_to_lower(stage, keys, monkeypatch, tmp_path):
    """A stage whose work raises torch.cuda.OutOfMemoryError (raised here on the CPU) stops with one
    line; its outputs are not written (every output is written atomically, at the end)."""
    from seenn import cli
    from seenn.pipeline.config import load_config
    from seenn.pipeline.table import build_stages

    config = load_config(ROOT / "params.yaml")
    st = next(s for s in build_stages(config) if s.name == stage)
    assert cli.batch_keys(st, config) == keys

    def run(ctx):
        raise torch.cuda.OutOfMemoryError(OOM)

    with pytest.raises(SeennError) as info:
        _run_stage_with(stage, config, run, tmp_path, monkeypatch)
    msg = str(info.value)
    assert msg.startswith(f"stage {stage}: CUDA ran out of memory (asked for 2.00 GiB, 1.50 GiB free); nothing was written")
    assert all(k in msg for k in keys) and "\n" not in msg
    assert not any((tmp_path / p).exists() for p in st.outputs.values())


def test_a_paper_row_refuses_to_train_without_a_gpu_unless_told_cpu(monkeypatch, tmp_path):
    from conftest import paper_config

    config = paper_config("config/paper/resnet19_cifar10.yaml")
    assert config["requires_gpu"] and config["device"] == "auto"
    ran = []
    with pytest.raises(SeennError, match="stage train_snn: this config needs a GPU .* set device: cpu"):
        _run_stage_with("train_snn", config, ran.append, tmp_path, monkeypatch)
    assert not ran
    config["device"] = "cpu"  # said explicitly: it runs (and, writing nothing here, is then told so)
    (tmp_path / "cpu").mkdir()
    with pytest.raises(SeennError, match="finished without writing"):
        _run_stage_with("train_snn", config, ran.append, tmp_path / "cpu", monkeypatch)
    assert len(ran) == 1


@pytest.mark.parametrize("augment", ["none", "crop_flip"])
def test_sigterm_mid_epoch_checkpoints_the_step_and_the_rerun_ends_byte_identical(tmp_path, augment):
    """SIGTERM (as a SLURM job at its time limit gets) in the middle of epoch 2: the loop writes a
    checkpoint at the step it reached and stops with one line; rerunning resumes from that step
    and ends with the weights and log rows of an uninterrupted run, bit for bit."""
    import os
    import signal

    from seenn.loops.resume import Preempted, partial_path

    def run(d, kill_at=None):
        model = _model()
        if kill_at is not None:
            calls = {"n": 0}

            def hook(module, args):
                calls["n"] += 1
                if calls["n"] == kill_at:
                    os.kill(os.getpid(), signal.SIGTERM)

            handle = model.stem.register_forward_pre_hook(hook)
        train, val = _data()
        try:
            rows = fit(model, snn_criterion("cumulative"), train, val, timesteps=2,
                       cfg={**CFG, "epochs": 3, "augment": augment}, seed=1, device=torch.device("cpu"), ckpt_dir=d,
                       fp="f", desc="train_snn")
        finally:
            if kill_at is not None:
                handle.remove()
        return rows, torch.cat([p.detach().flatten() for p in model.parameters()])

    ref_rows, ref_w = run(tmp_path / "ref")
    # epoch 1: 4 training batches, then validation (1 call); epoch 2's 2nd batch is call 7
    with pytest.raises(Preempted, match=r"^train_snn: stopped by SIGTERM in epoch 2 after step 2; .*partial\.pt: rerun"):
        run(tmp_path / "cut", kill_at=7)
    assert partial_path(tmp_path / "cut").exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone once the loop stops
    rows, w = run(tmp_path / "cut")
    assert rows == ref_rows and torch.equal(w, ref_w)
    assert not partial_path(tmp_path / "cut").exists()  # superseded by the epoch checkpoints
