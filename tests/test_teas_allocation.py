"""TEAS allocation at a scaling ratio, periodic adjustment, and the Eq. 6-8 regularizer."""

import numpy as np
import pytest
import torch

from seenn.common.errors import SeennError
from seenn.models import build_snn
from seenn.teas import layerwise, regularizer
from seenn.teas.allocation import adjust, allocate, scaling_ratio, timestep_equivalents

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}


def test_scaling_ratio_is_the_cost_weighted_average_window_over_T():
    assert scaling_ratio([8, 4, 2], [1, 2, 1], 8) == pytest.approx((8 + 8 + 2) / 32)
    assert scaling_ratio([8, 4, 2], None, 8) == pytest.approx(14 / 24)
    assert timestep_equivalents([8, 4, 2], [1, 2, 1]) == pytest.approx(18 / 4)
    assert timestep_equivalents([3, 3, 3], [5, 1, 7]) == pytest.approx(3)  # SEENN: one shared window


def test_allocation_hand_computed():
    a = [1.0, 0.5, 0.25]
    assert allocate(a, None, 8, 14 / 24) == [8, 4, 2]  # gamma = 1: in proportion to activity
    assert allocate(a, None, 8, 1.0) == [8, 8, 8]  # gamma = 0
    assert allocate(a, None, 8, 0.01) == [8, 1, 1]  # the most active layer keeps T
    # costs [1, 1, 10], target 0.3: [8,4,2] -> 32/96, [8,3,2] -> 31/96, [8,3,1] -> 21/96: the closest is [8,3,2]
    assert allocate(a, [1, 1, 10], 8, 0.3) == [8, 3, 2]
    assert allocate([0.5, 1.0, 0.0], None, 4, 7 / 12) == [2, 4, 1]  # a silent layer gets one step
    assert allocate([0.5, 1.0, 0.0], None, 4, 0.5) == [1, 4, 1]


@pytest.mark.parametrize("seed", range(5))
def test_allocation_is_the_closest_of_its_family(seed):
    rng = np.random.default_rng(seed)
    a, c, T = rng.random(6), rng.random(6) + 0.1, 16
    rho = float(rng.uniform(0.2, 0.9))
    w = allocate(a, c, T, rho)
    top = int(np.argmax(a))
    assert w[top] == T and all(1 <= v <= T for v in w)
    order = np.argsort(-a)
    assert all(w[order[i]] >= w[order[i + 1]] for i in range(5))  # more active, never fewer steps
    best = min(abs(scaling_ratio(np.clip(np.floor(T * (a / a.max()) ** g + 0.5), 1, T), c, T) - rho)
               for g in np.linspace(0, 40, 4001))
    assert abs(scaling_ratio(w, c, T) - rho) <= best + 1e-12


def test_adjustment_moves_a_few_of_the_most_active_layers_a_little():
    a = [1.0, 0.5, 0.25]  # allocation at 14/24: [8, 4, 2]
    assert adjust([8, 8, 8], a, None, 8, 14 / 24, layers_per_step=1) == [8, 7, 8]
    assert adjust([8, 8, 8], a, None, 8, 14 / 24, layers_per_step=2, max_change=3) == [8, 5, 5]
    assert adjust([8, 8, 8], a, None, 8, 14 / 24, final=True) == [8, 4, 2]
    # activity rose in the last layer: it gets a step back; the layer already at its target is left
    assert adjust([8, 4, 1], [1.0, 0.5, 0.3], None, 8, 14 / 24, layers_per_step=1) == [8, 4, 2]
    assert adjust([8, 4, 2], a, None, 8, 14 / 24) == [8, 4, 2]


def test_bad_allocation_inputs_are_named():
    with pytest.raises(SeennError, match="scaling ratio"):
        allocate([1.0, 0.5], None, 8, 0.0)
    with pytest.raises(SeennError, match="activity"):
        allocate([0.0, 0.0], None, 8, 0.5)
    with pytest.raises(SeennError, match="costs"):
        allocate([1.0, 0.5], [1.0], 8, 0.5)


def test_regularizer_value_and_gradient_by_hand():
    A = torch.tensor([0.5, 0.25], requires_grad=True)
    lr = regularizer.activity_regularizer([A[0], A[1]], [10, 30], reference=[0.5, 0.5])
    assert float(lr.detach()) == pytest.approx((10 * 0.5 / 0.5 + 30 * 0.25 / 0.5) / 40)
    lr.backward()
    assert torch.allclose(A.grad, torch.tensor([10 / (0.5 * 40), 30 / (0.5 * 40)]))
    B = torch.tensor([0.5, 0.25], requires_grad=True)
    lr = regularizer.activity_regularizer([B[0], B[1]], [10, 30])  # reference: the batch's own activity
    assert float(lr.detach()) == pytest.approx(1.0)
    lr.backward()
    assert torch.allclose(B.grad, torch.tensor([10 / (0.5 * 40), 30 / (0.25 * 40)]))  # the quieter layer, harder
    C = torch.tensor([0.5, 0.0], requires_grad=True)
    assert float(regularizer.activity_regularizer([C[0], C[1]], [10, 30]).detach()) == pytest.approx(10 / 40)  # silent: left out


def tiny():
    torch.manual_seed(0)
    return build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}, NEURON, 1, 5)


def test_layer_parameters_follow_the_windows():
    m, x = tiny(), torch.randn(2, 1, 8, 8)
    p = regularizer.layer_parameters(m, x)
    # stem 1*4*9; block 0: conv1, conv2 4*4*9; block 1: conv1 4*8*9, conv2 8*8*9 + shortcut 4*8, fc 8*5 + 5
    assert p == [36, 144, 144, 288, 576 + 32 + 45]
    assert sum(p) == sum(q.numel() for n, q in m.named_parameters() if "bn" not in n and "shortcut.2" not in n
                         and "stem.1" not in n)


def test_regularizer_gradient_lowers_activity():
    m = tiny()
    x = torch.randn(8, 1, 8, 8) * 2
    W = [4, 3, 3, 2, 2]
    params = regularizer.layer_parameters(m, x)
    res = layerwise.run(m, x, W)
    ref = [float(r.detach()) for r in regularizer.spike_rates(res)]
    lr = regularizer.activity_regularizer(regularizer.spike_rates(res), params, ref)
    assert float(lr.detach()) == pytest.approx(1.0)
    lr.backward()
    grads = [q.grad.abs().sum() for n, q in m.named_parameters() if "conv" in n]
    assert all(float(g) > 0 for g in grads)
    with torch.no_grad():
        for q in m.parameters():
            if q.grad is not None:
                q -= 0.05 * q.grad
        after = regularizer.activity_regularizer(regularizer.spike_rates(layerwise.run(m, x, W)), params, ref)
    assert float(after.detach()) < 0.99  # one step on l_r alone: the weighted activity went down


def test_teas_loss_adds_lambda_times_the_regularizer():
    m = tiny()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    res = layerwise.run(m, x, [3, 2, 2, 1, 1])
    params = regularizer.layer_parameters(m, x)
    total, ce, lr = regularizer.teas_loss(res, y, params, 0.5)
    total, ce, lr = total.detach(), ce.detach(), lr.detach()
    assert float(ce) == pytest.approx(float(torch.nn.functional.cross_entropy(res.logits.detach().mean(0), y)))
    assert float(total) == pytest.approx(float(ce) + 0.5 * float(lr))
    _, ce_counts, _ = regularizer.teas_loss(res, y, params, 0.5, logit_scale=float(res.logits.shape[0]))
    assert float(ce_counts.detach()) == pytest.approx(float(torch.nn.functional.cross_entropy(res.logits.detach().sum(0), y)))
    with pytest.raises(SeennError, match="lambda"):
        regularizer.teas_loss(res, y, params, -1.0)


def test_top_window_scale_reaches_a_ratio_the_rule_cannot():
    from seenn.teas.allocation import allocate_to_ratio

    a = [1.0, 0.1]  # two layers, T = 16: the rule keeps [16, x], so the plain average stays >= 8.5
    assert allocate_to_ratio(a, None, 16, 0.42, "full") == allocate(a, None, 16, 0.42) == [16, 1]
    # scale: f * [16, 1] rounded, the f whose average is closest to 0.42 * 16 = 6.72: [12, 1] -> 6.5 (vs [13, 1] -> 7)
    assert allocate_to_ratio(a, None, 16, 0.42, "scale") == [12, 1]
    # a ratio the rule reaches is left alone
    assert allocate_to_ratio([1.0, 0.5, 0.25], None, 8, 14 / 24, "scale") == [8, 4, 2]
    # adjustment's final step takes the scaled target whole
    assert adjust([16, 1], a, None, 16, 0.42, final=True, top_window="scale") == [12, 1]
    with pytest.raises(SeennError, match="top_window"):
        allocate_to_ratio(a, None, 16, 0.42, "half")


def test_shortening_takes_steps_off_the_least_active_layers_first():
    from seenn.teas.allocation import shorten

    a = [0.1, 0.9, 0.3, 0.5]  # least active: layer 0, then 2, then 3; layer 1 the most active
    # a periodic adjustment: only the 2 least active layers move, by 1 step each, toward ratio 0.8 (12.8 of 16 steps)
    assert shorten([4, 4, 4, 4], a, None, 4, 0.8, layers_per_step=2, max_change=1) == [3, 4, 3, 4]
    # the final one meets the ratio: layer 0 down to 1 first (13 steps), then layer 2 (12)
    assert shorten([4, 4, 4, 4], a, None, 4, 0.8, final=True) == [1, 4, 3, 4]
    # with top window 'full' the most active layer keeps its window even when nothing else can shorten
    assert shorten([1, 4, 1, 1], a, None, 4, 0.25, final=True) == [1, 4, 1, 1]
    assert shorten([1, 4, 1, 1], a, None, 4, 0.25, final=True, top_window="scale") == [1, 1, 1, 1]
    # a layer that costs nothing per step (c_l = 0) is never shortened: it would gain nothing
    assert shorten([4, 4, 4, 4], a, [0.0, 1.0, 1.0, 1.0], 4, 0.75, final=True) == [4, 4, 1, 4]
    # a ratio already met: nothing moves, and windows never grow
    assert shorten([2, 3, 1, 4], a, None, 4, 0.9, final=True) == [2, 3, 1, 4]


@pytest.mark.parametrize("seed", range(20))
def test_shortening_never_grows_and_the_final_meets_the_target(seed):
    from seenn.teas.allocation import scaling_ratio, shorten

    g = np.random.default_rng(seed)
    L, T = int(g.integers(2, 8)), int(g.integers(1, 17))
    a, c = g.random(L) + 0.01, g.random(L) + 0.1
    w = [int(v) for v in g.integers(1, T + 1, L)]
    rho = float(g.uniform(0.05, 1.0))
    mid = shorten(w, a, c, T, rho, layers_per_step=2, max_change=1)
    assert all(1 <= n <= o for n, o in zip(mid, w)) and sum(o - n for n, o in zip(mid, w)) <= 2
    final = shorten(w, a, c, T, rho, final=True, top_window="scale")
    assert all(1 <= n <= o for n, o in zip(final, w))
    assert scaling_ratio(final, c, T) <= rho + 1e-12 or all(v == 1 for v in final)


def test_the_adjustment_schedule_goes_from_the_start_ratio_to_the_target():
    from seenn.teas.allocation import scheduled_ratio, start_ratio
    from seenn.teas.procedure import adjustment_epochs

    assert start_ratio(0.6, 0.5) == pytest.approx(0.8) and start_ratio(0.6, 0.0) == 0.6
    assert [scheduled_ratio(0.8, 0.6, k, 4) for k in (1, 2, 3, 4)] == pytest.approx([0.75, 0.7, 0.65, 0.6])
    assert adjustment_epochs(30, 5) == [5, 10, 15, 20, 25, 30] and adjustment_epochs(7, 3) == [3, 6, 7]
    assert adjustment_epochs(0, 1) == []
    with pytest.raises(SeennError, match="start_slack"):
        start_ratio(0.6, 1.5)


def test_activity_key_reads_eq2_as_printed_or_per_neuron():
    from seenn.teas.activity import LayerActivity, per_layer

    big, small = LayerActivity("big", 400.0, 100, 2, 4), LayerActivity("small", 20.0, 4, 2, 4)
    assert (big.value("layer"), small.value("layer")) == (50.0, 2.5)  # spikes per inference per step
    assert (big.value("neuron"), small.value("neuron")) == (0.5, 0.625)  # ... per neuron
    # the allocation follows the key: per layer the big layer is the most active, per neuron the small one
    by_layer = allocate([big.value("layer"), small.value("layer")], None, 8, 0.6)
    by_neuron = allocate([big.value("neuron"), small.value("neuron")], None, 8, 0.6)
    assert by_layer[0] == 8 > by_layer[1] and by_neuron[1] == 8 > by_neuron[0]
    assert per_layer([0.5, 0.25], [100, 2], "layer") == [50.0, 0.5] and per_layer([0.5], [100], "neuron") == [0.5]
    with pytest.raises(SeennError, match="teas.activity"):
        big.value("synapse")


def _retrain_cfg(**kw):
    cfg = {"epochs": 3, "adjust_every": 1, "adjust_layers": 2, "adjust_max_change": 1, "adjustment": "shorten",
           "start_slack": 0.5, "activity": "neuron", "finetune_epochs": 1, "lambda": 0.1, "lr": 5e-4, "finetune_lr": 1e-4,
           "decay": 0.9, "decay_reading": "lr", "batch_size": 8, "top_window": "full", "temperature": 1.0, "log_every": 1}
    return {**cfg, **kw}


def test_retraining_shortens_the_windows_to_the_target_at_a_fixed_ratio():
    """From a looser start, each adjustment removes steps (least active first) and the final one
    meets the target; the learning rate follows Table 1's schedule (5e-4 then 1e-4, times the decay)."""
    from seenn.teas.allocation import scaling_ratio
    from seenn.teas.procedure import retrain

    m = tiny()
    x, y = torch.randn(16, 1, 8, 8) * 2, torch.arange(16) % 5
    start = [4, 4, 4, 4, 4]
    final, rows = retrain(m, x, y, start, [0.2] * 5, None, 4, 0.6, _retrain_cfg(), seed=0)
    after = [[int(v) for v in r["windows_after"].split()] for r in rows]
    assert after[0] != start and sum(after[0]) >= sum(after[1]) >= sum(after[2])  # moved, gradually, never grew
    assert sum(start) - sum(after[0]) <= 2  # a periodic adjustment moves at most 2 layers by 1 step
    assert final == after[-1] and scaling_ratio(final, None, 4) <= 0.6 + 1e-12 and max(final) == 4
    assert [r["lr"] for r in rows] == pytest.approx([5e-4, 5e-4 * 0.9, 5e-4 * 0.81, 1e-4])
    assert [r["phase"] for r in rows] == ["retrain"] * 3 + ["finetune"]
    # 'reallocate' at the target from the target's own allocation: nothing to move (the earlier reading)
    m = tiny()
    _, rows = retrain(m, x, y, final, [0.2] * 5, None, 4, 0.6, _retrain_cfg(adjustment="reallocate", epochs=1), seed=0)
    assert rows[0]["windows_after"] != "" and all(1 <= int(v) <= 4 for v in rows[0]["windows_after"].split())


def test_adam_decay_read_as_beta2(monkeypatch):
    from seenn.teas import procedure

    seen = {}
    real = torch.optim.Adam

    def adam(params, **kw):
        seen.update(kw)
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", adam)
    m = tiny()
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 5
    _, rows = procedure.retrain(m, x, y, [2] * 5, [0.2] * 5, None, 2, 1.0,
                                _retrain_cfg(decay_reading="beta2", decay=0.99, epochs=2, adjustment="none"), seed=0)
    assert seen["betas"] == (0.9, 0.99) and [r["lr"] for r in rows] == [5e-4, 5e-4, 1e-4]  # no per-epoch decay
    with pytest.raises(SeennError, match="decay_reading"):
        procedure.learning_rate(_retrain_cfg(decay_reading="sometimes"), "retrain", 1)
