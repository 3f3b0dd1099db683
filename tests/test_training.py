"""The one training loop (training.py) and its criteria (losses.py): the ANN criterion is plain
cross-entropy, TET alone takes lambda and phi, batches draw the order (then, with augmentation, an
epoch seed; each sample augmented from its own generator) from one generator, ranks get slices of
the global batch, and train_one_epoch steps the schedule per batch and reports batch-weighted means."""

import pytest
import torch
import torch.nn.functional as F

from seenn.common.artifacts import TRAIN_LOG_COLUMNS
from seenn.data.augment import augmented_input
from seenn.data.registry import get_spec
from seenn.data.source import TensorSource, sample_generator
from seenn.data.spec import to_input
from seenn.loops.fit import ShuffledBatches, fit, train_one_epoch
from seenn.models import build_snn
from seenn.snn.losses import ann_loss, cumulative_loss, mean_loss, snn_criterion, tet_loss

DIGITS = get_spec("digits")


def test_ann_loss_is_cross_entropy_of_the_one_step_in_value_and_gradient():
    out = torch.randn(1, 5, 10, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = torch.tensor([0, 3, 9, 1, 1])
    loss = ann_loss(out, y)
    (g,) = torch.autograd.grad(loss, out)
    ref = F.cross_entropy(out[0], y)
    (g_ref,) = torch.autograd.grad(ref, out)
    assert torch.equal(loss, ref) and torch.equal(g, g_ref)
    with pytest.raises(ValueError, match="one timestep, got T = 2"):
        ann_loss(torch.zeros(2, 5, 10), y)


def test_snn_criterion_gives_tet_its_parameters_and_no_other_loss_needs_them():
    out = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([1, 2, 3, 4])
    assert torch.equal(snn_criterion("tet", 0.25, 0.5)(out, y), tet_loss(out, y, 0.25, 0.5))
    assert snn_criterion("mean") is mean_loss and snn_criterion("cumulative") is cumulative_loss
    with pytest.raises(ValueError, match="'tet' loss needs tet_lambda and tet_phi"):
        snn_criterion("tet")
    with pytest.raises(ValueError, match="unknown loss 'ce'"):
        snn_criterion("ce")


def _source(x, y, spec=DIGITS):
    return TensorSource(spec, x, y, "train", "memory")


def test_batches_draw_the_order_then_an_epoch_seed_and_augment_each_sample_from_its_own_generator():
    x = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    y = torch.arange(10)
    data = ShuffledBatches(_source(x, y), 4, "crop_flip", torch.Generator().manual_seed(7))
    got = list(data)
    g = torch.Generator().manual_seed(7)
    order = torch.randperm(10, generator=g)
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    one = [augmented_input("crop_flip", DIGITS, x[int(order[k]) : int(order[k]) + 1], sample_generator(seed, k))[0]
           for k in range(10)]
    want = [(torch.stack(one[i : i + 4]), y[order[i : i + 4]]) for i in range(0, 10, 4)]
    assert len(data) == 3 == len(got)
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(got, want))
    assert torch.equal(data.generator.get_state(), g.get_state())  # nothing else drawn from the run's generator


def test_no_augmentation_draws_only_the_order_and_builds_whole_batches():
    x = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    y = torch.arange(10)
    data = ShuffledBatches(_source(x, y), 4, "none", torch.Generator().manual_seed(7))
    got = list(data)
    g = torch.Generator().manual_seed(7)
    order = torch.randperm(10, generator=g)
    want = [(to_input(DIGITS, x[order[i : i + 4]]), y[order[i : i + 4]]) for i in range(0, 10, 4)]
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(got, want))
    assert torch.equal(data.generator.get_state(), g.get_state())


@pytest.mark.parametrize("augment", ["none", "crop_flip"])
def test_the_ranks_batches_are_slices_of_the_global_batch(augment):
    x = torch.randint(0, 256, (11, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    y = torch.arange(11)
    whole = list(ShuffledBatches(_source(x, y), 6, augment, torch.Generator().manual_seed(9)))
    world = 3
    ranks = [list(ShuffledBatches(_source(x, y), 6, augment, torch.Generator().manual_seed(9), rank=r, world=world))
             for r in range(world)]
    for b, (xb, yb) in enumerate(whole):
        parts = [ranks[r][b] for r in range(world)]
        assert sorted(torch.cat([p[1] for p in parts]).tolist()) == sorted(yb.tolist())  # the union is the batch
        for r, (xr, yr) in enumerate(parts):
            assert torch.equal(yr, yb[r::world]) and torch.equal(xr, xb[r::world])
    with pytest.raises(ValueError, match="rank 2 outside world size 2"):
        ShuffledBatches(_source(x, y), 6, augment, torch.Generator(), rank=2, world=2)


class _Linear(torch.nn.Module):
    """A model with the SNN call signature: model(x, T) -> outputs [T, B, K]."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x, timesteps):
        return self.fc(x).expand(timesteps, -1, -1)


def test_train_one_epoch_steps_the_schedule_per_batch_and_reports_batch_weighted_means():
    torch.manual_seed(0)
    model = _Linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])
    data = [(x[:3], y[:3]), (x[3:], y[3:])]
    seen = []

    def criterion(out, yb):
        seen.append((out.shape, float(mean_loss(out, yb).detach())))
        return mean_loss(out, yb)

    m = train_one_epoch(model, criterion, opt, data, torch.device("cpu"), timesteps=2, scheduler=sched)
    assert [s for s, _ in seen] == [(2, 3, 2), (2, 2, 2)]
    assert m["lr"] == 0.5 and opt.param_groups[0]["lr"] == 0.125  # stepped once per batch, lr read before
    assert m["train_loss"] == pytest.approx((3 * seen[0][1] + 2 * seen[1][1]) / 5)
    assert 0 <= m["train_acc"] <= 100 and model.training


def test_fit_logs_one_row_per_epoch_and_repeats_itself(tmp_path):
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    y = torch.arange(16) % 10
    cfg = {"epochs": 2, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "augment": "none"}

    def run(tag):
        torch.manual_seed(0)
        model = build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4], "blocks": [1]},
                          {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}, 1, 10)
        rows = fit(model, snn_criterion("cumulative"), _source(x, y), _source(x[:8], y[:8]), timesteps=2, cfg=cfg, seed=1,
                   device=torch.device("cpu"), ckpt_dir=tmp_path / tag, fp=tag, desc="fit")
        return rows, torch.cat([p.detach().flatten() for p in model.parameters()])

    rows, w = run("a")
    assert [tuple(r) for r in rows] == [TRAIN_LOG_COLUMNS] * 2 and [r["epoch"] for r in rows] == [1, 2]
    rows_b, w_b = run("b")
    assert rows_b == rows and torch.equal(w_b, w)


class _Conv(torch.nn.Module):
    """A conv + linear model with the SNN call signature, recording the dtype its conv computes in."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc, self.dtypes = torch.nn.Conv2d(1, 4, 3), torch.nn.Linear(4, 3), []

    def forward(self, x, timesteps):
        h = self.conv(x)
        self.dtypes.append(h.dtype)
        return self.fc(h.mean((2, 3))).expand(timesteps, -1, -1)


@pytest.mark.parametrize("amp, dtype", [("none", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_amp_training_step_autocasts_on_cpu_and_keeps_float32_weights(amp, dtype):
    from seenn.loops.fit import grad_scaler

    torch.manual_seed(0)
    model = _Conv()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 1, 6, 6), torch.arange(8) % 3
    scaler = grad_scaler(torch.device("cpu"), amp)
    assert (scaler is not None) == (amp == "fp16")
    m = train_one_epoch(model, mean_loss, opt, [(x, y)] * 2, torch.device("cpu"), timesteps=2, amp=amp, scaler=scaler)
    assert model.dtypes == [dtype, dtype]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # stepped (fp16: not skipped)
    assert torch.isfinite(torch.tensor(m["train_loss"]))


def test_fit_with_fp16_checkpoints_the_grad_scaler_and_resumes_it(tmp_path):
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    y = torch.arange(16) % 10
    cfg = {"epochs": 1, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "augment": "none"}
    model = build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4], "blocks": [1]},
                      {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}, 1, 10)
    fit(model, snn_criterion("cumulative"), _source(x, y), _source(x[:8], y[:8]), timesteps=2, cfg=cfg, seed=1,
        device=torch.device("cpu"), ckpt_dir=tmp_path, fp="f", desc="fit", amp="fp16")
    from seenn.common.artifacts import epoch_checkpoints, load_epoch_checkpoint

    state = load_epoch_checkpoint(epoch_checkpoints(tmp_path)[-1])
    assert state["scaler"]["scale"] > 0 and "_growth_tracker" in state["scaler"]
