"""TEAS activity profile (Eq. 2, raw and per-neuron) and the noise-sensitivity probe."""

import pytest
import torch

from seenn.common.errors import SeennError
from seenn.teas import activity, layerwise
from seenn.teas.mlp import TeasMLP


def net():
    torch.manual_seed(0)
    return TeasMLP((1, 6, 6), 4, hidden=16)


def test_profile_counts_spikes_per_step_raw_and_per_neuron():
    m, x = net(), torch.rand(7, 1, 6, 6) * 3
    prof = activity.profile(m, x, 5, batch_size=3)
    with torch.no_grad():
        h = m.stem_act(m.encode(x, 5))
        out = m(x, 5)
    hidden, output = prof
    assert hidden.name == "stem_act" and output.name == "out_act"
    assert hidden.samples == 7 and hidden.steps == 5 and hidden.neurons == 16 and output.neurons == 4
    assert hidden.raw == pytest.approx(float(h.sum()) / (7 * 5))  # the layer's spikes per inference per step
    assert output.rate == pytest.approx(float(out.mean()))  # per neuron per step
    assert 0 < hidden.rate <= 1


def test_profile_from_a_layer_major_run_agrees_at_equal_windows():
    m, x = net(), torch.rand(4, 1, 6, 6) * 3
    with torch.no_grad():
        res = layerwise.run(m, x, [5, 5])
    a = [v for l in activity.profile(m, x, 5) for v in (l.raw, l.rate)]
    b = [v for l in activity.from_result(res) for v in (l.raw, l.rate)]
    assert a == pytest.approx(b)
    with torch.no_grad():
        short = activity.from_result(layerwise.run(m, x, [5, 2]))
    assert short[1].steps == 2


def test_noise_probe():
    m, x = net(), torch.rand(20, 1, 6, 6) * 3
    y = m(x, 4).sum(0).argmax(-1).detach()  # labels the clean network gets right
    clean, zero = activity.noise_sensitivity(m, x, y, 4, u=0.0)
    assert clean == 100.0 and zero == {"stem_act": 100.0, "out_act": 100.0}
    _, noisy = activity.noise_sensitivity(m, x, y, 4, u=5.0, seed=3)
    assert min(noisy.values()) < 100.0
    assert activity.noise_sensitivity(m, x, y, 4, u=5.0, seed=3)[1] == noisy  # seeded
    _, gauss = activity.noise_sensitivity(m, x, y, 4, u=5.0, noise="gaussian", scale="absolute")
    assert set(gauss) == set(noisy)
    with pytest.raises(SeennError, match="noise"):
        activity.noise_sensitivity(m, x, y, 4, noise="pink")
