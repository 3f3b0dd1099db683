import math

import pytest
import torch

from seenn.methods.exits import exit_scores, policy_exit, seenn1_exit, seenn1_exit_many


def test_strict_threshold_and_fallback_to_T():
    s = torch.tensor([[0.5, 0.9, 0.95], [0.2, 0.3, 0.4], [0.91, 0.1, 0.1]])
    assert seenn1_exit(s, 0.9).tolist() == [3, 3, 1]  # 0.9 is not > 0.9
    assert seenn1_exit(s, 0.85).tolist() == [2, 3, 1]
    many = seenn1_exit_many(s, torch.tensor([0.9, 0.85]))
    assert many.tolist() == [[3, 3, 1], [2, 3, 1]]


def test_confidence_and_entropy_scores():
    z = torch.tensor([[[0.0, 0.0], [10.0, 0.0]]])  # uniform at t=1, confident at t=2
    conf = exit_scores(z, "confidence")
    ent = exit_scores(z, "entropy")
    assert conf[0, 0] == pytest.approx(0.5)
    assert ent[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert conf[0, 1] == pytest.approx(1 / (1 + math.exp(-10)))
    assert 0.99 < ent[0, 1] <= 1


def test_mean_accumulation_and_temperature_soften_scores():
    z = torch.tensor([[[1.0, 0.0], [4.0, 0.0]]])
    s_sum = exit_scores(z, "confidence", accumulate="sum")
    s_mean = exit_scores(z, "confidence", accumulate="mean")
    s_temp = exit_scores(z, "confidence", temperature=8.0)
    assert s_mean[0, 1] < s_sum[0, 1]
    assert s_mean[0, 1] == pytest.approx(1 / (1 + math.exp(-2)))
    assert s_temp[0, 1] < s_sum[0, 1]
    with pytest.raises(ValueError, match="unknown exit score"):
        exit_scores(z, "margin")


def test_temperature_reaches_the_entropy_score_only_when_asked():
    """z = [8 ln 3, 0]: softmax(z / 8) = [3/4, 1/4], so with the temperature on the entropy score
    it is 1 - H / ln 2, H = 3/4 ln(4/3) + 1/4 ln 4 = 0.5623351, i.e. 0.1887219 (the old
    behaviour); off (the authors' way) it is the raw entropy score of softmax(z) = [6561, 1] /
    6562. The confidence score is max softmax(z / 8) = 3/4 either way."""
    z = torch.tensor([[[8 * math.log(3), 0.0]]])
    raw = exit_scores(z, "entropy")
    assert torch.equal(exit_scores(z, "entropy", temperature=8.0), raw)
    assert torch.equal(exit_scores(z, "entropy", 8.0, "sum", entropy_temperature=False), raw)
    p = 6561 / 6562
    assert float(raw[0, 0]) == pytest.approx(1 + (p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2), rel=1e-6)
    assert float(exit_scores(z, "entropy", 8.0, "sum", entropy_temperature=True)[0, 0]) == pytest.approx(0.1887219, abs=1e-6)
    for flag in (False, True):
        assert float(exit_scores(z, "confidence", 8.0, "sum", flag)[0, 0]) == pytest.approx(0.75, rel=1e-6)


def test_policy_exit_is_one_based_argmax():
    assert policy_exit(torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0]])).tolist() == [2, 1]
