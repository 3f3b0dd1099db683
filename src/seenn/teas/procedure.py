"""The steps TEAS's stages chain: profile (activity and per-step layer costs in one layer-major
pass), evaluation (accuracy and cost of one allocation, counted by the same OpCounter as SEENN),
regularized retraining with periodic window adjustment, and the MNIST MLP's training.

Choices (stated in the report's method notes): retraining uses Adam (the paper's optimizer) on
the network's own weights with BatchNorm statistics frozen (eval mode: the retraining subset is
small), no augmentation, shuffled by a generator seeded with `seed`, at Table 1's rates
(`learning_rate`); the regularizer's reference activity is the one measured at the last
allocation or adjustment; the activity of each epoch (the mean firing rate per layer over its
batches, as #Act(l) by `teas.activity`) drives the adjustment after it; fine-tuning at the final
windows uses cross-entropy only (lambda 0). The MLP's training accuracy in its log is the plain
argmax of its forward's counts; every evaluation breaks ties (layerwise.LayerwiseResult.predict)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seenn.common.errors import SeennError
from seenn.loops.watch import TrainingWatch
from seenn.teas import activity, allocation, cost, layerwise
from seenn.teas.mlp import TeasMLP
from seenn.teas.regularizer import layer_parameters, spike_rates, teas_loss

log = logging.getLogger("seenn")


@dataclass
class Profile:
    """Per spiking layer: activity (activity.LayerActivity) and c_l, the operations one step of its
    window costs per inference at uniform windows T."""

    layers: list[activity.LayerActivity]
    costs: list[float]
    T: int

    @property
    def rates(self) -> list[float]:
        return [a.rate for a in self.layers]

    def activity(self, kind: str) -> list[float]:
        """#Act(l) per layer as `teas.activity` reads it (activity.LayerActivity.value)."""
        return [a.value(kind) for a in self.layers]


@torch.no_grad()
def profile(model: nn.Module, x: torch.Tensor, T: int, batch_size: int, conversion: str = "eq3",
            expansion: str = "continuous") -> Profile:
    """Activity (Eq. 2) and per-step costs of every spiking layer, from one counted layer-major run at T."""
    if x.shape[0] == 0:
        raise SeennError("the TEAS profile needs at least one input")
    model.eval()
    names = layerwise.spiking_layers(model)
    total = {n: activity.LayerActivity(n, 0.0, 0, 0, T) for n in names}

    def collect(i: int, res: layerwise.LayerwiseResult) -> None:
        for a in activity.from_result(res):
            t = total[a.name]
            t.spikes += a.spikes
            t.neurons = a.neurons
            t.samples += a.samples

    run = cost.count(model, x, [T] * len(names), batch_size, conversion, expansion=expansion, on_batch=collect)
    return Profile(list(total.values()), cost.per_step(run, T), T)


def weights(prof: Profile, ratio_weights: str) -> list[float] | None:
    """The layer weights of the scaling ratio: 'ops' the per-step costs, 'layers' None (plain average)."""
    if ratio_weights == "layers":
        return None
    if ratio_weights != "ops":
        raise SeennError(f"ratio_weights must be 'ops' or 'layers', got {ratio_weights!r}")
    if not sum(prof.costs) > 0:
        raise SeennError("every layer's per-step cost is 0 (no spikes reached a synapse): use ratio_weights 'layers'")
    return prof.costs


def _logit_scale(model: nn.Module, windows: Sequence[int], cfg: dict) -> float:
    """Eq. 7's u times this: 1 for the ResNets (their mean output); for TeasMLP the last window's
    length over `cfg['temperature']`, i.e. its output spike counts / temperature, as it was trained."""
    return float(windows[-1]) / cfg["temperature"] if isinstance(model, TeasMLP) else 1.0


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, windows: Sequence[int], costs: Sequence[float],
             batch_size: int, conversion: str = "eq3", expansion: str = "continuous") -> dict:
    """Accuracy (%), the share of tied predictions, ACs, MACs, energy (uJ) per inference,
    timestep-equivalents (cost-weighted average window, `costs` = c_l) and the plain average window
    of running `model` at `windows`, predictions and operations from the same counted runs."""
    model.eval()
    windows = layerwise.check_windows(model, list(windows))
    n, hits = x.shape[0], {"correct": 0, "tied": 0}

    def score(i: int, res: layerwise.LayerwiseResult) -> None:
        pred, tied = res.predict()
        hits["correct"] += int((pred == y[i : i + pred.shape[0]].to(pred.device)).sum())
        hits["tied"] += int(tied.sum())

    run = cost.count(model, x, windows, batch_size, conversion, expansion=expansion, on_batch=score)
    c = costs if sum(costs) > 0 else None
    return {"windows": [int(w) for w in windows], "accuracy": 100.0 * hits["correct"] / n, "tied_share": hits["tied"] / n,
            "acs": run.acs, "macs": run.macs, "energy_uj": run.energy_uj,
            "timestep_equivalents": allocation.timestep_equivalents(windows, c),
            "avg_window": sum(windows) / len(windows), "n": n}


DECAY_READINGS = ("lr", "beta2")  # teas.decay_reading: Table 1's "Adam Decay 0.99"
ADJUST = (*allocation.ADJUSTMENTS, "none")  # "none": windows fixed (the control trained as long)


def adjustment_epochs(epochs: int, every: int) -> list[int]:
    """The retraining epochs after which the windows are adjusted: every `every`-th and the last."""
    if epochs < 0 or every < 1:
        raise SeennError(f"teas retraining needs epochs >= 0 and adjust_every >= 1, got {epochs}, {every}")
    return [e for e in range(1, epochs + 1) if e % every == 0 or e == epochs]


def learning_rate(cfg: dict, phase: str, epoch_in_phase: int) -> float:
    """Table 1's schedule: `lr` while retraining, `finetune_lr` while fine-tuning (its "5e-4/1e-4"),
    times decay^(epoch - 1) within the phase when "Adam Decay" is read as a per-epoch decay ('lr')."""
    if cfg["decay_reading"] not in DECAY_READINGS:
        raise SeennError(f"teas.decay_reading must be one of {DECAY_READINGS}, got {cfg['decay_reading']!r}")
    if not 0 < cfg["decay"] <= 1:
        raise SeennError(f"teas.decay must be in (0, 1], got {cfg['decay']}")
    base = cfg["lr"] if phase == "retrain" else cfg["finetune_lr"]
    return base * cfg["decay"] ** (epoch_in_phase - 1) if cfg["decay_reading"] == "lr" else base


def _adjusted(windows: list[int], act: list[float], costs, T: int, rho: float, rho0: float, k: int, K: int,
              cfg: dict) -> list[int]:
    """The windows after adjustment k of K (`cfg['adjustment']`, allocation's module docstring)."""
    final = k == K
    if cfg["adjustment"] == "none":
        return windows
    if cfg["adjustment"] == "reallocate":
        return allocation.adjust(windows, act, costs, T, rho, cfg["adjust_layers"], cfg["adjust_max_change"],
                                 final=final, top_window=cfg["top_window"])
    return allocation.shorten(windows, act, costs, T, allocation.scheduled_ratio(rho0, rho, k, K), cfg["adjust_layers"],
                              cfg["adjust_max_change"], final=final, top_window=cfg["top_window"])


def retrain(model: nn.Module, x: torch.Tensor, y: torch.Tensor, windows: Sequence[int], reference: Sequence[float],
            costs: Sequence[float] | None, T: int, rho: float, cfg: dict, seed: int,
            conversion: str = "eq3", expansion: str = "continuous") -> tuple[list[int], list[dict]]:
    """TEAS retraining (section 3.3) from `windows` (the start allocation): `cfg['epochs']` epochs of
    CE + lambda l_r with the windows adjusted after the epochs of `adjustment_epochs` (the last
    one final, meeting `rho`), then `finetune_epochs` at the final windows (CE only). Returns
    (final windows, one log row per epoch). cfg: epochs, adjust_every, adjust_layers,
    adjust_max_change, adjustment, activity, finetune_epochs, lambda, lr, finetune_lr, decay,
    decay_reading, batch_size, top_window, temperature, log_every."""
    if cfg["adjustment"] not in ADJUST:
        raise SeennError(f"teas.adjustment must be one of {allocation.ADJUSTMENTS}, got {cfg['adjustment']!r}")
    activity.check_kind(cfg["activity"])
    windows = layerwise.check_windows(model, list(windows))
    rho0 = allocation.scaling_ratio(windows, costs, T)
    adjust_at = adjustment_epochs(cfg["epochs"], cfg["adjust_every"])
    params = layer_parameters(model, x[:1])
    betas = (0.9, cfg["decay"]) if cfg["decay_reading"] == "beta2" else (0.9, 0.999)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate(cfg, "retrain", 1), betas=betas)
    watch = TrainingWatch("teas retraining", x.device, cfg.get("log_every", 1), "none")
    gen = torch.Generator().manual_seed(seed)
    ref = list(reference)
    rows = []
    neurons: list[int] = []
    total = cfg["epochs"] + cfg["finetune_epochs"]
    model.eval()  # BatchNorm statistics frozen; gradients still flow through every weight
    for epoch in range(1, total + 1):
        phase = "retrain" if epoch <= cfg["epochs"] else "finetune"
        lam = cfg["lambda"] if phase == "retrain" else 0.0
        lr = learning_rate(cfg, phase, epoch if phase == "retrain" else epoch - cfg["epochs"])
        for g in opt.param_groups:
            g["lr"] = lr
        order = torch.randperm(x.shape[0], generator=gen)
        watch.begin_epoch()
        # per layer spike rate, then loss, ce, l_r, correct: summed on the device, read every log_every steps
        sums = torch.zeros(len(windows) + 4, dtype=torch.float64, device=x.device)
        for k, i in enumerate(range(0, x.shape[0], cfg["batch_size"]), 1):
            idx = order[i : i + cfg["batch_size"]]
            res = layerwise.run(model, x[idx], windows, conversion, expansion=expansion)
            if not neurons:
                neurons = [s[0, 0].numel() for s in res.spikes.values()]
            loss, ce, lr_term = teas_loss(res, y[idx], params, lam, ref, logit_scale=_logit_scale(model, windows, cfg))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            watch.step(loss, model.parameters(), lr)
            opt.step()
            b = idx.numel()
            hits = (res.predict()[0] == y[idx]).sum().double()
            sums += torch.stack([r.detach().double() * b for r in spike_rates(res)]
                                + [loss.detach().double() * b, ce.detach().double() * b, lr_term.detach().double() * b, hits])
            if watch.due(k):
                watch.read(epoch, f" ({phase})")
        watch.read(epoch, f" ({phase})")
        n = x.shape[0]
        *layer_sums, loss_sum, ce_sum, lr_sum, correct = sums.tolist()
        correct = int(correct)
        rates = [s / n for s in layer_sums]
        row = {"epoch": epoch, "phase": phase, "lr": lr, "lambda": lam, "loss": loss_sum / n, "ce": ce_sum / n,
               "regularizer": lr_sum / n, "train_acc": 100.0 * correct / n, "windows": " ".join(map(str, windows))}
        if phase == "retrain" and epoch in adjust_at:
            if max(rates) > 0:
                act = activity.per_layer(rates, neurons, cfg["activity"])
                windows = _adjusted(windows, act, costs, T, rho, rho0, adjust_at.index(epoch) + 1, len(adjust_at), cfg)
            ref = rates
        row["windows_after"] = " ".join(map(str, windows))
        log.info("teas retrain epoch %d/%d (%s): lr %.3g loss %.4f ce %.4f l_r %.4f train acc %.2f %% windows %s", epoch,
                 total, phase, lr, row["loss"], row["ce"], row["regularizer"], row["train_acc"], row["windows_after"])
        rows.append(row)
    return list(windows), rows


def train_mlp(model: TeasMLP, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, T: int,
              epochs: int, lr: float, batch_size: int, seed: int, temperature: float = 1.0,
              log_every: int = 1) -> list[dict]:
    """Direct training of the MNIST MLP at T steps (BPTT through the surrogate): Adam, CE on the
    output spike counts divided by `temperature` (teas.mnist.temperature), shuffled by a generator
    seeded with `seed`."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    watch = TrainingWatch("teas_train_mnist", x.device, log_every, "none")
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        watch.begin_epoch()
        order = torch.randperm(x.shape[0], generator=gen)
        sums = torch.zeros(2, dtype=torch.float64, device=x.device)  # loss, correct: read every log_every steps
        for k, i in enumerate(range(0, x.shape[0], batch_size), 1):
            idx = order[i : i + batch_size]
            counts = model(x[idx], T).sum(0)
            loss = F.cross_entropy(counts / temperature, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            watch.step(loss, model.parameters(), lr)
            opt.step()
            sums += torch.stack([loss.detach().double() * idx.numel(),
                                 (counts.detach().argmax(-1) == y[idx]).sum().double()])
            if watch.due(k):
                watch.read(epoch)
        watch.read(epoch)
        loss_sum, correct = sums.tolist()
        correct = int(correct)
        model.eval()
        with torch.no_grad():
            val = sum(int((layerwise.run(model, xv[i : i + 500], [T, T]).predict()[0] == yv[i : i + 500]).sum())
                      for i in range(0, xv.shape[0], 500))
        rows.append({"epoch": epoch, "lr": lr, "train_loss": loss_sum / x.shape[0], "train_acc": 100.0 * correct / x.shape[0],
                     "val_acc": 100.0 * val / xv.shape[0]})
        log.info("teas_train_mnist epoch %d/%d: loss %.4f train acc %.2f %% val acc (T=%d) %.2f %%", epoch, epochs,
                 rows[-1]["train_loss"], rows[-1]["train_acc"], T, rows[-1]["val_acc"])
    return rows
