import pytest
import torch
from torch import nn

from seenn.models import build_snn
from seenn.models.policy import build_policy
from seenn.snn.ops import ann_macs, count_macs, snn_macs

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}


def test_conv_and_linear_macs_follow_the_formula():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(8 * 10 * 10, 5))
    r = count_macs(m, torch.zeros(2, 3, 10, 10))
    conv = 8 * 10 * 10 * 3 * 3 * 3
    fc = 5 * 800
    assert r["macs"] == 2 * (conv + fc)  # summed over the batch
    assert r["params"] == 8 * 27 + 5 * 800
    assert ann_macs(m, (3, 10, 10))["macs"] == conv + fc


def test_snn_cost_is_fixed_stem_plus_timesteps_times_the_rest():
    torch.manual_seed(0)
    snn = build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}, NEURON, 1, 10)
    ops = snn_macs(snn, (1, 12, 12))
    assert ops["fixed"] == 4 * 12 * 12 * 9  # the direct-encoding stem conv runs once
    assert count_macs(snn, torch.zeros(1, 1, 12, 12), 3)["macs"] == ops["fixed"] + 3 * ops["per_timestep"]


def test_policy_share_matches_the_papers_resnet8_vs_resnet19():
    """Paper: the ResNet-8 policy costs 0.547 % of ResNet-19's operations (CIFAR, one timestep)."""
    r19 = build_snn({"arch": "resnet", "stem_channels": 128, "widths": [128, 256, 512], "blocks": [3, 3, 2]}, NEURON, 3, 10)
    policy = build_policy(3, 4, 16, [16, 32, 64])
    snn = snn_macs(r19, (3, 32, 32))
    share = 100 * ann_macs(policy, (3, 32, 32))["macs"] / (snn["fixed"] + snn["per_timestep"])
    assert share == pytest.approx(0.547, abs=0.001)
