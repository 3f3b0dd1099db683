"""Running a saved SNN: rebuild it from its checkpoint and compute its accumulated logits
(shared by training's validation, evaluation, conversion, SEENN-II and the engine stages)."""

from __future__ import annotations

import math

import torch

from seenn.common.artifacts import CONVERTED_KIND, SNN_KIND, load_snn_checkpoint, load_weights
from seenn.common.progress import progress
from seenn.data.source import eval_batches
from seenn.data.spec import DatasetSpec
from seenn.models import build_if_snn, build_snn
from seenn.snn.neurons import set_stepwise


def batches(n: int, batch_size: int, generator: torch.Generator | None):
    """Index batches over n samples, shuffled by `generator` (None: in order)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


@torch.no_grad()
def predict_logits(model, source, timesteps: int, batch_size: int, device: torch.device, desc: str | None = None,
                   stepwise: bool = False, loader: dict | None = None, keep: list[int] | None = None) -> torch.Tensor:
    """Accumulated logits z [N, T, K] of an SNN (z_t = O_1 + ... + O_t) on a SplitSource, in order
    (`loader`: worker processes for a streamed split).

    stepwise=True runs one timestep at a time (neurons keep their membrane between calls): the
    same numbers up to rounding, with memory for one timestep instead of T (converted SNNs, T=64).
    `keep` (1-based timesteps, increasing): only those z_t, [N, len(keep), K] (conversion.keep_timesteps)."""
    model.eval()
    outs = []
    idx = None if keep is None else torch.tensor([t - 1 for t in keep], device=device)
    data = eval_batches(source, batch_size, loader)
    for xb, _ in progress(data, desc=desc, total=math.ceil(len(source) / batch_size)):
        xb = xb.to(device)
        if stepwise:
            set_stepwise(model, True)
            try:
                if keep is None:
                    z = torch.cat([model(xb, 1) for _ in range(timesteps)]).cumsum(0)  # [T, B, K]
                else:
                    z = _kept_running_sum(model, xb, timesteps, keep)  # [len(keep), B, K]
            finally:
                set_stepwise(model, False)
        else:
            z = model(xb, timesteps).cumsum(0)  # [T, B, K]
            if idx is not None:
                z = z[idx]
        outs.append(z.transpose(0, 1).float().cpu())
    return torch.cat(outs)


def _kept_running_sum(model, xb: torch.Tensor, timesteps: int, keep: list[int]) -> torch.Tensor:
    """z_t at the kept t of a stepwise run, [len(keep), B, K]: memory for one timestep and the kept
    sums, never all T."""
    z, kept, wanted = None, [], set(keep)
    for t in range(1, timesteps + 1):
        o = model(xb, 1)[0]
        z = o if z is None else z + o
        if t in wanted:
            kept.append(z)
    return torch.stack(kept)


def _build_direct(ck: dict, spec: DatasetSpec):
    return build_snn(ck["model"], ck["neuron"], spec.input_shape[-3], spec.num_classes, event=spec.event,
                     image_size=spec.input_shape[-1])


def _build_converted(ck: dict, spec: DatasetSpec):
    """IF neurons whose membrane starts at the checkpoint's `init_fraction` of the threshold (absent:
    0.5, QCFS's; RMP conversion records 0)."""
    return build_if_snn(ck["model"], spec.input_shape[-3], spec.num_classes, init_fraction=ck.get("init_fraction", 0.5),
                        image_size=spec.input_shape[-1])


# how each SNN checkpoint kind (common.artifacts.SNN_KINDS) is rebuilt
SNN_BUILDERS = {SNN_KIND: _build_direct, CONVERTED_KIND: _build_converted}


def load_snn(path, spec: DatasetSpec):
    """(network, checkpoint contents) of a saved SNN; errors name the file if it does not fit the dataset."""
    ck = load_snn_checkpoint(path, spec)
    model = SNN_BUILDERS[ck["kind"]](ck, spec)
    load_weights(model, ck["state_dict"], path, "SNN checkpoint")
    return model, ck
