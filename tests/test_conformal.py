"""The conformal stopping rule (methods/conformal.py): its quantile by hand, its coverage over
redraws of the calibration split, and the engine running it as it runs every exit rule."""

import math

import pytest
import torch
from test_certify import population
from test_engine import T, posthoc_logits, tiny

from seenn.methods import conformal, engine
from seenn.methods.conformal import ConformalExit


def test_the_quantile_rank_by_hand():
    assert conformal.quantile_rank(9, 0.2, 1) == 8  # ceil(10 * 0.8)
    assert conformal.quantile_rank(9, 0.2, 2) == 9  # ceil(10 * 0.9)
    assert conformal.quantile_rank(9, 0.2, 4) == 10  # ceil(10 * 0.95) = 10 > n: q = +inf
    # the warning: T = 64 checkpoints, n = 500, alpha 0.1: ceil(501 * (1 - 0.1 / 64)) = 501 > 500
    assert conformal.quantile_rank(500, 0.1, 64) == 501


def test_the_checkpoints_of_each_setting():
    assert conformal.checkpoints_for(None, 4) == [1, 2, 3, 4]
    assert conformal.checkpoints_for("pow2", 64) == [1, 2, 4, 8, 16, 32, 64]
    assert conformal.checkpoints_for("pow2", 6) == [1, 2, 4, 6]
    assert conformal.checkpoints_for([2, 4], 4) == [2, 4]
    # pow2 at T = 64 (7 stops): rank ceil(501 * (1 - 0.1 / 7)) = 494 <= 500, so the rule can stop
    assert conformal.quantile_rank(500, 0.1, len(conformal.checkpoints_for("pow2", 64))) == 494


def test_a_branch_override_replaces_the_conformal_setting():
    from seenn.methods.seenn1 import branch_config

    params = {"conformal": {"alpha": 0.1, "checkpoints": None}, "conversion": {"conformal_checkpoints": "pow2",
                                                                                "seenn1_temperature": 8.0}}
    assert branch_config(params, "conformal") == {"alpha": 0.1, "checkpoints": "pow2"}
    assert branch_config({"conformal": {"alpha": 0.1, "checkpoints": None}}, "conformal")["checkpoints"] is None


def test_calibrate_takes_the_ranked_true_class_score():
    # two classes; the true class's 1 - p at t = 1 for 9 samples is 0.1, ..., 0.9
    p = torch.arange(1, 10, dtype=torch.float64) / 10
    true_logit = torch.log(1 - p) - torch.log(p)  # softmax gives 1 - p to class 0 against a zero logit
    logits = torch.stack([true_logit, torch.zeros(9, dtype=torch.float64)], -1)[:, None, :]
    labels = torch.zeros(9, dtype=torch.long)
    q = conformal.calibrate(logits, labels, [1], 0.2, "one_minus_p")
    assert q[0] == pytest.approx(0.8)
    assert conformal.calibrate(logits, labels, [1], 0.05, "one_minus_p") == [math.inf]
    with pytest.raises(ValueError, match="checkpoints"):
        conformal.calibrate(logits, labels, [2], 0.2, "one_minus_p")


def test_coverage_holds_over_redraws_and_the_rule_stops_early():
    """Over 200 redraws (calibration n = 500, evaluation 2,000, both from one population), mean
    coverage is at least 1 - alpha_c minus 0.01 (the guarantee holds in expectation; 0.01 is
    about four standard errors of the mean of 200 redraws here), and the average stopping time is
    below T. Checkpoints every timestep: Bonferroni at 0.1 / 4."""
    z = population()
    y_pop = z[:, -1].argmax(-1)  # the population's label: the full-T class plus noise below
    g = torch.Generator().manual_seed(3)
    flip = torch.rand(len(y_pop), generator=g) < 0.05
    y_pop = torch.where(flip, torch.randint(0, z.shape[-1], (len(y_pop),), generator=g), y_pop)
    alpha, cover, steps = 0.1, [], []
    for _ in range(200):
        cal = torch.randint(0, z.shape[0], (500,), generator=g)
        ev = torch.randint(0, z.shape[0], (2000,), generator=g)
        q = conformal.calibrate(z[cal], y_pop[cal], [1, 2, 3, 4], alpha, "one_minus_p")
        rule = ConformalExit((1, 2, 3, 4), tuple(q), 1, "one_minus_p")
        r = conformal.report(z[ev], y_pop[ev], rule)
        cover.append(r["coverage"])
        steps.append(r["avg_timesteps"])
    assert sum(cover) / len(cover) >= 1 - alpha - 0.01
    assert sum(steps) / len(steps) < z.shape[1]


@pytest.mark.parametrize("batch_size", [1, 5, None])
def test_the_engine_runs_the_conformal_rule_as_post_hoc(batch_size):
    model = tiny()
    torch.manual_seed(4)
    x, x_cal = torch.randn(17, 1, 12, 12) * 2, torch.randn(40, 1, 12, 12) * 2
    z, z_cal = posthoc_logits(model, x, T), posthoc_logits(model, x_cal, T)
    # thresholds from other samples: one calibrated on x itself sits exactly on a sample's score,
    # where float rounding at another batch size may tip the comparison
    q = conformal.calibrate(z_cal, z_cal[:, -1].argmax(-1), [1, 3], 0.3, "neg_log_p")
    rule = ConformalExit((1, 3), tuple(q), 2, "neg_log_p")
    ref = rule.posthoc(z)
    assert len(set(ref.tolist())) >= 2  # samples stop at different timesteps
    res = engine.run(model, x, T, rule, batch_size=batch_size)
    assert torch.equal(res.exit_t, ref)


def test_the_conformal_rule_compiles_with_the_step():
    """fullgraph=True: the rule is tensor ops on the device (its thresholds a device table)."""
    model = tiny()
    torch.manual_seed(5)
    x, x_cal = torch.randn(13, 1, 12, 12) * 2, torch.randn(40, 1, 12, 12) * 2
    z, z_cal = posthoc_logits(model, x, T), posthoc_logits(model, x_cal, T)
    q = conformal.calibrate(z_cal, z_cal[:, -1].argmax(-1), [1, 2, 3, 4], 0.3, "one_minus_p")
    rule = ConformalExit((1, 2, 3, 4), tuple(q), 2, "one_minus_p")
    res = engine.Engine(model, T, rule, 4, compile_step=True, sync_every=2)(x)
    assert torch.equal(res.exit_t, rule.posthoc(z))
