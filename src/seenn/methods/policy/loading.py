"""SEENN-II policy networks rebuilt from their file (common.artifacts.save_policies): for the SEENN-II
stages and, through `engine.load_policy`, the energy and latency stages."""

from __future__ import annotations

import torch

from seenn.common.artifacts import check_trained_on, load_policy_file, load_weights
from seenn.common.errors import SeennError
from seenn.data.spec import DatasetSpec
from seenn.models.policy import build_policy


def load_policies(path) -> tuple[dict, list[torch.nn.Module]]:
    """(file contents, rebuilt policies in entry order)."""
    obj = load_policy_file(path)
    models = []
    for e in obj["entries"]:
        m = build_policy(obj["in_channels"], len(obj["action_grid"]), obj["policy_stem_channels"], obj["policy_widths"],
                         obj["policy_stem_stride"], obj["action_grid"])
        load_weights(m, e["state_dict"], path, "SEENN-II policy file")
        models.append(m.eval())
    return obj, models


class EventMean(torch.nn.Module):
    """The policy as the engine calls it on event data: the SNN's input [B, T, C, H, W] is
    averaged over time first, as in training (`policy.policy_input`)."""

    def __init__(self, policy: torch.nn.Module):
        super().__init__()
        self.policy = policy
        self.grid = policy.grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.policy(x.mean(1))


def load_policy(path, spec: DatasetSpec) -> torch.nn.Module:
    """The single policy saved by seenn2_evaluate (role 'policy'), as a network mapping the SNN's
    input batch (`to_input`) to action logits [B, T]; used by `engine.load_policy`."""
    obj, policies = load_policies(path)
    if len(policies) != 1:
        raise SeennError(f"{path} holds {len(policies)} policies, expected the one main-beta policy: rerun seenn2_evaluate")
    check_trained_on(obj, spec, path, "SEENN-II policy", "rerun the SEENN-II stages")
    return EventMean(policies[0]) if spec.event else policies[0]
