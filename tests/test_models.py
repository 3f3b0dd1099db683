import pytest
import torch

from seenn.models import build_snn
from seenn.snn.neurons import set_stepwise

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}


def tiny(event=False, in_ch=1):
    torch.manual_seed(0)
    return build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 2]}, NEURON, in_ch, 5, event=event)


def test_output_is_per_timestep_logits():
    m = tiny()
    out = m(torch.randn(3, 1, 12, 12), 4)
    assert out.shape == (4, 3, 5)


def test_event_input_feeds_one_frame_per_timestep():
    m = tiny(event=True, in_ch=2)
    out = m(torch.rand(2, 6, 2, 12, 12), 6)
    assert out.shape == (6, 2, 5)


def test_stepwise_execution_equals_multistep():
    m = tiny().eval()
    x = torch.randn(3, 1, 12, 12) * 3
    with torch.no_grad():
        multi = m(x, 4)
        set_stepwise(m, True)
        steps = torch.cat([m(x, 1) for _ in range(4)])
        set_stepwise(m, False)
    assert torch.allclose(multi, steps, atol=1e-6)


def test_gradients_reach_the_stem():
    m = tiny()
    m(torch.randn(4, 1, 12, 12), 2).sum().backward()
    assert m.stem[0].weight.grad is not None and m.stem[0].weight.grad.abs().sum() > 0


def test_unknown_arch_is_rejected():
    with pytest.raises(ValueError, match="unknown model.arch"):
        build_snn({"arch": "vit", "stem_channels": 4, "widths": [4], "blocks": [1]}, NEURON, 1, 5)
