"""What the SEENN-II policy sees: the stored samples of a split as the policy's input, and the
SNN's per-timestep correctness read from the logits the evaluate stage saved (the SNN is never
rerun to train a policy)."""

from __future__ import annotations

import torch

from seenn.common.artifacts import load_logits
from seenn.common.errors import SeennError
from seenn.data.files import open_split
from seenn.data.source import StreamedInputs
from seenn.data.spec import DatasetSpec, to_input
from seenn.methods.metrics import correctness


def policy_input(spec: DatasetSpec, x: torch.Tensor) -> torch.Tensor:
    """What the policy sees: the normalized image; for event data, the mean frame over time (a
    static summary of the recording, since the policy decides before the SNN runs)."""
    inp = to_input(spec, x)
    return inp.mean(1) if spec.event else inp


def policy_in_channels(spec: DatasetSpec) -> int:
    return spec.input_shape[-3]


def load_policy_split(split_path, logits_path) -> tuple[DatasetSpec, torch.Tensor, torch.Tensor]:
    """(spec, policy inputs [N, C, H, W], SNN correctness [N, T]) of one split; the logits file
    must hold the same samples as the split file."""
    src = open_split(split_path)
    spec, y = src.spec, src.y
    z, yl = load_logits(logits_path)
    if yl.shape != y.shape or not torch.equal(yl, y):
        raise SeennError(f"logits {logits_path} do not match the samples of {split_path}: rerun the evaluate stage")
    inputs = StreamedInputs(src) if src.streamed else policy_input(spec, src.x)  # streamed: static images only
    return spec, inputs, correctness(z, yl)
