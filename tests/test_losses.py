"""The training losses (losses.py) against hand-computed values on tiny tensors (SPEC formulas)."""

import math

import pytest
import torch

from seenn.snn.losses import cumulative_loss, mean_loss, snn_loss, tet_loss

# T = 2 timesteps, one sample, K = 2 classes, label 0. CE([a, b], 0) = ln(1 + e^(b - a)).
O = torch.tensor([[[0.0, 0.0]], [[2 * math.log(3), 0.0]]])  # O_1 = [0, 0], O_2 = [2 ln 3, 0]
Y = torch.tensor([0])
LN2, CE2 = math.log(2), math.log(10 / 9)  # CE(O_1) = ln 2; CE(O_2) = ln(1 + 1/9) = ln(10/9)


def test_tet_loss_hand_computed():
    # (1 - lam) * mean_t CE(O_t, y) + lam * MSE(O, phi); mean_t CE = (ln 2 + ln(10/9)) / 2 = 0.3992538
    ce = (LN2 + CE2) / 2
    # MSE over all 4 outputs against phi = 1: ((0-1)^2 * 3 + (2 ln 3 - 1)^2) / 4 = (3 + 1.4333467) / 4
    mse = (3 + (2 * math.log(3) - 1) ** 2) / 4
    assert mse == pytest.approx(1.1083367, abs=1e-7)
    assert float(tet_loss(O, Y, lam=0.5, phi=1.0)) == pytest.approx(0.5 * ce + 0.5 * mse, rel=1e-6)  # 0.7537952
    assert float(tet_loss(O, Y, lam=0.5, phi=1.0)) == pytest.approx(0.7537952, abs=1e-6)
    # phi = 0: MSE = (2 ln 3)^2 / 4 = (ln 3)^2 = 1.2069490
    assert float(tet_loss(O, Y, lam=0.5, phi=0.0)) == pytest.approx(0.5 * ce + 0.5 * math.log(3) ** 2, rel=1e-6)
    # lam = 0: the plain per-timestep cross-entropy; the default lam = 1e-3 weighs MSE by 1e-3
    assert float(tet_loss(O, Y, lam=0.0)) == pytest.approx(ce, rel=1e-6)
    assert float(tet_loss(O, Y)) == pytest.approx(0.999 * ce + 0.001 * mse, rel=1e-6)


def test_mean_loss_hand_computed():
    # CE(mean_t O_t, y): mean_t O_t = [ln 3, 0], CE = ln(1 + 1/3) = ln(4/3) = 0.2876821
    assert float(mean_loss(O, Y)) == pytest.approx(math.log(4 / 3), rel=1e-6)


def test_cumulative_loss_hand_computed():
    # mean_t CE(z_t / t, y): z_1 / 1 = [0, 0] -> ln 2; z_2 / 2 = [ln 3, 0] -> ln(4/3);
    # (ln 2 + ln(4/3)) / 2 = ln(8/3) / 2 = 0.4904146 (dividing z_t by t + 1, or skipping t = 1, differs)
    assert float(cumulative_loss(O, Y)) == pytest.approx(math.log(8 / 3) / 2, rel=1e-6)
    assert float(cumulative_loss(O, Y)) == pytest.approx(0.4904146, abs=1e-6)


def test_losses_average_over_the_batch():
    # a second sample, label 1, all-zero outputs: CE = ln 2 at every t and for the mean, so each
    # loss becomes (its value above + ln 2) / 2
    o2 = torch.cat([O, torch.zeros(2, 1, 2)], 1)
    y2 = torch.tensor([0, 1])
    assert float(mean_loss(o2, y2)) == pytest.approx((math.log(4 / 3) + LN2) / 2, rel=1e-6)
    assert float(cumulative_loss(o2, y2)) == pytest.approx((math.log(8 / 3) / 2 + LN2) / 2, rel=1e-6)
    assert float(tet_loss(o2, y2, lam=0.0)) == pytest.approx(((LN2 + CE2) / 2 + LN2) / 2, rel=1e-6)


def test_snn_loss_dispatches_by_name():
    assert float(snn_loss("tet", O, Y, tet_lambda=0.5, tet_phi=0.0)) == pytest.approx(float(tet_loss(O, Y, 0.5, 0.0)))
    assert float(snn_loss("mean", O, Y)) == pytest.approx(math.log(4 / 3), rel=1e-6)
    assert float(snn_loss("cumulative", O, Y)) == pytest.approx(math.log(8 / 3) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="unknown loss 'ce'"):
        snn_loss("ce", O, Y)
