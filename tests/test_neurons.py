import math

import pytest
import torch

from seenn.snn.neurons import IF, LIF, SURROGATES, Tanh, Triangle, set_stepwise


def test_lif_hand_computed_sequence():
    # decay 0.5, threshold 1: u = 0.6 -> 0.9 -> 1.05 (spike, reset) -> 0.6
    x = torch.full((4, 1), 0.6)
    s = LIF()(x)
    assert s.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]


def test_lif_stepwise_matches_sequence_and_resets():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 7) * 2
    seq = LIF()(x)
    n = LIF()
    n.stepwise = True
    steps = torch.stack([n(x[t]) for t in range(5)])
    assert torch.equal(seq, steps)
    n.reset()
    assert n.u is None


def test_triangle_surrogate_gradient_values():
    v = torch.tensor([-1.5, -0.5, 0.0, 0.25, 2.0], requires_grad=True)
    Triangle(1.0)(v).sum().backward()
    assert v.grad.tolist() == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.0])


def test_tanh_surrogate_gradient_matches_formula():
    v = torch.tensor([0.0, 0.1, 3.5], requires_grad=True)
    Tanh(3.0)(v).sum().backward()
    expected = [3 * (1 - math.tanh(3 * x) ** 2) / (2 * math.tanh(9)) for x in (0.0, 0.1)] + [0.0]
    assert v.grad.tolist() == pytest.approx(expected)


def test_unknown_surrogate_is_rejected():
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate="sigmoid")


def test_if_neuron_reset_by_subtraction_and_half_threshold_start():
    # threshold 1, u0 = 0.5, input 0.3: 0.8, 1.1 -> spike -> 0.1, 0.4, 0.7
    out = IF(1.0)(torch.full((5, 1), 0.3))
    assert out.flatten().tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]


def test_set_stepwise_toggles_every_neuron():
    m = torch.nn.Sequential(LIF(), IF(2.0))
    set_stepwise(m, True)
    assert all(n.stepwise for n in m)
    set_stepwise(m, False)
    assert not any(n.stepwise for n in m)


def test_surrogate_registry_is_the_config_vocabulary():
    from seenn.pipeline.config import load_schema

    assert load_schema()["properties"]["neuron"]["properties"]["surrogate"]["enum"] == list(SURROGATES)
    assert all(cls.name == name for name, cls in SURROGATES.items())
