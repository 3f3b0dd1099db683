"""TEAS cost: the SEENN operation counter on layer-major runs, energy, timestep-equivalents."""

import pytest
import torch

from seenn.methods.energy import OpCounter, energy_pj
from seenn.models import build_snn
from seenn.teas import cost, procedure
from seenn.teas.allocation import timestep_equivalents

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}


def net():
    torch.manual_seed(0)
    return build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}, NEURON, 1, 5).eval()


def test_uniform_windows_count_what_the_seenn_counter_counts():
    m, x = net(), torch.randn(6, 1, 10, 10) * 3
    c = cost.count(m, x, [4] * 5, batch_size=4)
    with torch.no_grad(), OpCounter(m) as ref:
        m(x, 4)
    acs, macs = (v / 6 for v in ref.totals())
    assert (c.acs, c.macs) == pytest.approx((acs, macs))
    assert c.energy_uj == pytest.approx(energy_pj(acs, macs) / 1e6)
    assert sum(c.layer_ops) + c.once_ops == pytest.approx(acs + macs)
    assert c.once_ops == pytest.approx(macs)  # the stem on the static image: the only MACs, once


def test_dense_layer_costs_scale_with_windows():
    m, x = net(), torch.randn(3, 1, 10, 10)
    c = cost.per_step(cost.count(m, x, [4] * 5, dense=True), 4)
    assert c[0] == 0.0 and all(v > 0 for v in c[1:])  # direct encoding: the first window costs nothing per step
    short = cost.count(m, x, [4, 2, 2, 1, 1], dense=True)
    assert short.layer_ops == pytest.approx([0.0, 2 * c[1], 2 * c[2], c[3], c[4]])
    assert timestep_equivalents([4, 2, 2, 1, 1], c) == pytest.approx((2 * c[1] + 2 * c[2] + c[3] + c[4]) / sum(c))


def test_profile_and_evaluation_count_through_cost_count(monkeypatch):
    """One counting path: the stages' profile and evaluation read their operations, accuracy and
    activity from cost.count's runs (replacing it changes what they report)."""
    m, x = net(), torch.randn(6, 1, 10, 10) * 3
    y = torch.arange(6) % 5
    windows = [4, 3, 2, 2, 1]
    ref = cost.count(m, x, windows, batch_size=4)
    ev = procedure.evaluate(m, x, y, windows, [1.0] * 5, batch_size=4)
    assert (ev["acs"], ev["macs"], ev["energy_uj"]) == pytest.approx((ref.acs, ref.macs, ref.energy_uj))
    prof = procedure.profile(m, x, 4, batch_size=4)
    assert prof.costs == pytest.approx(cost.per_step(cost.count(m, x, [4] * 5, batch_size=4), 4))
    calls = []
    real = cost.count

    def spy(*args, **kw):
        calls.append(args[2])
        return real(*args, **kw)

    monkeypatch.setattr(cost, "count", spy)
    procedure.evaluate(m, x, y, windows, [1.0] * 5, batch_size=4)
    procedure.profile(m, x, 4, batch_size=4)
    assert calls == [windows, [4] * 5]
