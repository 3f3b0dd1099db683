"""Learn-then-Test for SEENN-I's threshold (methods/certify.py): the p-values and fixed-sequence
testing against hand-worked cases, and the guarantee itself by redraws from a population whose
risk curve is known exactly."""

import math

import pytest
import torch
from scipy.stats import binom

from seenn.methods.certify import (
    binomial_p_value,
    certify,
    disagreement,
    fixed_sequence,
    hoeffding_bentkus_p_value,
    p_values,
)
from seenn.methods.exits import exit_scores, seenn1_exit_many
from seenn.methods.seenn1 import alpha_grid


def test_binomial_p_value_by_hand():
    assert binomial_p_value(0, 10, 0.1) == pytest.approx(0.9**10, rel=1e-12)  # 0.34868
    assert binomial_p_value(1, 10, 0.1) == pytest.approx(0.9**10 + 10 * 0.1 * 0.9**9, rel=1e-12)  # 0.73610
    assert binomial_p_value(10, 10, 0.1) == pytest.approx(1.0)


def test_hoeffding_bentkus_p_value_by_hand():
    # R = 0: Hoeffding exp(-n log(1 / (1 - eps))) = 0.95^100 beats Bentkus e * 0.95^100
    assert hoeffding_bentkus_p_value(0, 100, 0.05) == pytest.approx(0.95**100, rel=1e-12)
    # R above epsilon: h(eps, eps) = 0, so Hoeffding gives 1 and Bentkus e * P(X <= 10) > 1
    assert hoeffding_bentkus_p_value(10, 100, 0.05) == pytest.approx(1.0)
    # R = 0.02, n = 500, eps = 0.05: the Bentkus term, e * P(Bin(500, 0.05) <= 10), is the smaller
    h = 0.02 * math.log(0.02 / 0.05) + 0.98 * math.log(0.98 / 0.95)
    expected = min(math.exp(-500 * h), math.e * binom.cdf(10, 500, 0.05))
    assert expected == pytest.approx(math.e * binom.cdf(10, 500, 0.05))
    assert hoeffding_bentkus_p_value(10, 500, 0.05) == pytest.approx(expected, rel=1e-12)
    # never below the exact binomial p-value's order of magnitude: a valid but looser bound
    assert hoeffding_bentkus_p_value(10, 500, 0.05) >= binomial_p_value(10, 500, 0.05)


@pytest.mark.parametrize("kind, one", [("binomial", binomial_p_value), ("hoeffding_bentkus", hoeffding_bentkus_p_value)])
def test_vectorised_p_values_equal_the_scalar_ones(kind, one):
    losses = [0, 1, 7, 25, 60, 500]
    assert p_values(kind, losses, 500, 0.05) == pytest.approx([one(k, 500, 0.05) for k in losses], rel=1e-12)


@pytest.mark.parametrize("bad", [(-1, 10, 0.1), (11, 10, 0.1), (0, 0, 0.1), (1, 10, 0.0), (1, 10, 1.0)])
def test_p_values_refuse_impossible_counts(bad):
    with pytest.raises(ValueError):
        binomial_p_value(*bad)


def test_fixed_sequence_stops_at_the_first_p_above_delta():
    assert fixed_sequence([0.01, 0.02, 0.5, 0.01], 0.05) == 2  # the fourth is never tested
    assert fixed_sequence([0.5, 0.01], 0.05) == 0
    assert fixed_sequence([0.01, 0.05], 0.05) == 2  # p = delta rejects (p > delta stops)
    assert fixed_sequence([], 0.05) == 0
    with pytest.raises(ValueError):
        fixed_sequence([0.01], 0.0)


def population(n=20000, T=4, K=4, seed=0):
    """Accumulated logits of a synthetic SNN: per sample a difficulty; each timestep adds a
    noisy vote for the true class, so confidence grows with t and the hard samples change their
    prediction late."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    margin = 2.5 * torch.rand(n, generator=g) ** 2
    step = torch.randn(n, T, K, generator=g) * 1.2
    step[torch.arange(n), :, y] += margin[:, None]
    return step.cumsum(1)


def test_disagreement_is_the_change_of_prediction_from_full_t():
    z = torch.tensor([[[2.0, 0.0], [2.0, 3.0]], [[0.0, 1.0], [0.0, 2.0]]])  # sample 0 changes its mind at t=2
    exits = torch.tensor([[1, 1], [2, 1]])
    assert disagreement(z, exits).tolist() == [[True, False], [False, False]]


def test_learn_then_test_holds_its_guarantee_over_redraws():
    """Calibration sets of n = 500 drawn with replacement from a fixed population: the population
    is the distribution, so each alpha's true risk is known exactly. The certified alpha's true
    risk exceeds epsilon in at most delta of the redraws, plus three binomial standard deviations
    of the 400 redraws' own sampling (sqrt(0.1 * 0.9 / 400) = 0.015: margin 0.045); and an alpha
    looser than the strictest is certified in at least 90 % of them (a rule that always falls back
    to full T fails here)."""
    z = population()
    alphas = alpha_grid(0.3, 0.999, 40)
    exits = seenn1_exit_many(exit_scores(z, "confidence"), alphas)
    true_risk = disagreement(z, exits).double().mean(1)  # [A], exact for the population
    epsilon, delta, n, redraws = 0.05, 0.1, 500, 400
    assert true_risk.min() < epsilon / 4 and true_risk.max() > 2 * epsilon  # the curve crosses epsilon
    g = torch.Generator().manual_seed(1)
    violated = looser = 0
    for _ in range(redraws):
        pick = torch.randint(0, z.shape[0], (n,), generator=g)
        c = certify(z[pick], alphas, "confidence", epsilon, delta)
        if c.index is None:
            continue
        violated += bool(true_risk[c.index] > epsilon)
        looser += c.index < len(alphas) - 1
    assert violated / redraws <= delta + 0.045
    assert looser / redraws >= 0.9


def test_the_guarantee_is_not_the_plain_empirical_rule():
    """Picking the loosest alpha whose calibration risk is at most epsilon, with no p-value,
    breaks epsilon far more often than delta: what the test above would catch."""
    z = population()
    alphas = alpha_grid(0.3, 0.999, 40)
    true_risk = disagreement(z, seenn1_exit_many(exit_scores(z, "confidence"), alphas)).double().mean(1)
    g = torch.Generator().manual_seed(2)
    violated = 0
    for _ in range(200):
        c = certify(z[torch.randint(0, z.shape[0], (500,), generator=g)], alphas, "confidence", 0.05, 0.1)
        ok = [i for i, r in enumerate(c.risks) if r <= 0.05]
        violated += bool(ok) and bool(true_risk[min(ok)] > 0.05)
    assert violated / 200 > 0.3
