import pytest
import torch

from seenn.methods.metrics import (
    accuracy_per_t,
    aet,
    correctness,
    empirical_aet,
    exit_histogram,
    exit_outcome,
    first_correct_t,
    oracle,
)


def test_paper_example_aet_3_empirical_2():
    c = torch.tensor([[False, True, False, True]])
    assert aet(c) == pytest.approx(3.0)
    assert empirical_aet(c) == pytest.approx(2.0)


def test_aet_equals_empirical_when_correct_stays_correct():
    c = torch.tensor([[True, True, True], [False, True, True], [False, False, False], [False, False, True]])
    # first correct: 1, 2, never (3), 3
    assert first_correct_t(c).tolist() == [1, 2, 3, 3]
    assert aet(c) == pytest.approx((1 + 2 + 3 + 3) / 4)
    assert empirical_aet(c) == pytest.approx((1 + 2 + 3 + 3) / 4)


def test_accuracy_per_t_and_correctness_from_logits():
    z = torch.tensor([[[2.0, 1.0], [0.0, 3.0]], [[0.0, 1.0], [0.0, 2.0]]])  # [N=2, T=2, K=2]
    y = torch.tensor([1, 1])
    c = correctness(z, y)
    assert c.tolist() == [[False, True], [True, True]]
    assert accuracy_per_t(c) == [50.0, 100.0]


def test_correctness_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected logits"):
        correctness(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))


def test_oracle_and_exit_outcome():
    c = torch.tensor([[False, True], [False, False], [True, True]])
    acc, t = oracle(c)
    assert acc == pytest.approx(200 / 3)
    assert t == pytest.approx((2 + 2 + 1) / 3)
    acc, avg = exit_outcome(c, torch.tensor([1, 2, 1]))
    assert acc == pytest.approx(100 / 3)
    assert avg == pytest.approx(4 / 3)
    assert exit_histogram(torch.tensor([1, 2, 1]), 3) == [2, 1, 0]
