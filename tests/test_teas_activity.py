"""TEAS activity profile (Eq. 2, raw and per-neuron) and the noise-sensitivity probe."""

import pytest
import torch

from seenn.common.errors import SeennError
from seenn.teas import activity, layerwise
from seenn.models.base import TimeFold
from seenn.teas.mlp import TeasMLP, teas_if


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


def _perturbations(m, x, T, **kw):
    """{layer: the noise the probe added to that layer's input current}, by hooks around its neuron."""
    seen = {}
    for name, slot in m.named_modules():
        if isinstance(slot, TimeFold):
            clean = {}
            slot.register_forward_pre_hook(lambda mod, a, c=clean: c.__setitem__("x", a[0].detach().clone()))  # before the probe's
            slot.neuron.register_forward_pre_hook(
                lambda mod, a, c=clean, n=name: seen.setdefault(n, []).append(a[0].detach().reshape(c["x"].shape) - c["x"]))
    activity.noise_sensitivity(m, x, m(x, T).sum(0).argmax(-1), T, **kw)
    return {n: torch.cat([d.flatten() for d in v]) for n, v in seen.items()}


def test_noise_is_scaled_by_each_layers_threshold():
    """u times the layer's threshold (noise_scale threshold), or u itself (absolute); uniform in [-mag, mag]."""
    torch.manual_seed(0)
    m, x = TeasMLP((1, 6, 6), 4, hidden=16, neuron=teas_if(threshold=2.5)), torch.rand(30, 1, 6, 6) * 3
    for scale, mag in (("threshold", 0.2 * 2.5), ("absolute", 0.2)):
        added = _perturbations(m, x, 4, u=0.2, scale=scale, seed=1)
        for name, d in added.items():
            nonzero = d[d != 0]  # the clean run (no noise) and the other layers' probes add nothing here
            assert nonzero.numel() > 100, name
            assert float(nonzero.abs().max()) <= mag + 1e-6 and float(nonzero.abs().max()) > 0.9 * mag
            assert abs(float(nonzero.mean())) < 0.2 * mag  # centred


def test_noise_probe():
    """Each layer's accuracy is the network's with that layer's input (and only its) perturbed by
    the seeded noise: recomputed here by hand for the output layer."""
    m, x = net(), torch.rand(40, 1, 6, 6) * 3
    y = m(x, 4).sum(0).argmax(-1).detach()  # labels the clean network gets right
    clean, zero = activity.noise_sensitivity(m, x, y, 4, u=0.0)
    assert clean == 100.0 and zero == {"stem_act": 100.0, "out_act": 100.0}
    _, noisy = activity.noise_sensitivity(m, x, y, 4, u=1.5, seed=3)
    assert min(noisy.values()) < 100.0
    assert activity.noise_sensitivity(m, x, y, 4, u=1.5, seed=3)[1] == noisy  # seeded
    gen = torch.Generator().manual_seed(3 + 1)  # the output layer is the second slot: seed + 1
    draw = 1.5 * m.out_act.neuron.threshold * (torch.rand(40 * 4, 4, generator=gen) * 2 - 1)
    h = m.out_act.register_forward_pre_hook(lambda mod, a: (a[0] + draw,))
    with torch.no_grad():
        by_hand = 100.0 * float((m(x, 4).sum(0).argmax(-1) == y).double().mean())
    h.remove()
    assert noisy["out_act"] == pytest.approx(by_hand)
    added = _perturbations(m, x, 4, u=1.5, seed=3)["out_act"]  # the very noise: that draw, on that layer only
    assert torch.allclose(added[added != 0], draw.flatten(), atol=1e-5)
    _, gauss = activity.noise_sensitivity(m, x, y, 4, u=1.5, noise="gaussian", scale="absolute")
    assert set(gauss) == set(noisy) and gauss != noisy
    with pytest.raises(SeennError, match="noise"):
        activity.noise_sensitivity(m, x, y, 4, noise="pink")
