"""TEAS layer-major execution: equal windows reproduce forward(x, T); unequal windows run; the MLP."""

import pytest
import torch

from seenn.common.errors import SeennError
from seenn.models import build_if_snn, build_snn
from seenn.models.resnet import TimeFold
from seenn.snn.neurons import IF, LIF
from seenn.teas import layerwise
from seenn.teas.mlp import TeasMLP

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
ARCH = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 2]}


def lif_net(event=False, in_ch=1):
    torch.manual_seed(0)
    return build_snn(ARCH, NEURON, in_ch, 5, event=event)


def if_net():
    torch.manual_seed(0)
    m = build_if_snn(ARCH, 1, 5)
    for i, slot in enumerate(mm for mm in m.modules() if isinstance(mm, TimeFold)):
        slot.neuron.threshold.fill_(0.4 + 0.15 * i)  # a lambda per layer, as after conversion
    return m


@pytest.mark.parametrize("train", [False, True])
def test_equal_windows_equal_forward_lif(train):
    m = lif_net().train(train)
    x = torch.randn(3, 1, 12, 12) * 3
    with torch.no_grad():
        ref = m(x, 4)
        res = layerwise.run(m, x, [4] * 7)
    assert torch.equal(res.logits, ref)
    assert res.logits.abs().sum() > 0


def test_equal_windows_equal_forward_if():
    m = if_net().eval()
    x = torch.randn(3, 1, 12, 12) * 3
    with torch.no_grad():
        ref = m(x, 6)
        res = layerwise.run(m, x, [6] * 7)
    assert torch.equal(res.logits, ref)
    assert any(bool((s != 0).any()) for s in res.spikes.values())


def test_equal_windows_equal_forward_event_input():
    m = lif_net(event=True, in_ch=2).eval()
    x = torch.rand(2, 5, 2, 12, 12) * 2
    with torch.no_grad():
        assert torch.equal(layerwise.run(m, x, [5] * 7).logits, m(x, 5))


@pytest.mark.parametrize("conversion", ["eq3", "naive"])
def test_unequal_windows_run_with_the_right_shapes(conversion):
    m = if_net().eval()
    x = torch.randn(2, 1, 12, 12) * 3
    W = [6, 3, 8, 2, 5, 4, 7]
    with torch.no_grad():
        res = layerwise.run(m, x, W, conversion)
    assert res.logits.shape == (7, 2, 5)
    assert [s.shape[0] for s in res.spikes.values()] == W
    assert res.mean_logits().shape == (2, 5)
    names = layerwise.spiking_layers(m)
    assert list(res.spikes) == names and names[:3] == ["stem_act", "layers.0.act1", "layers.0.act2"]
    with torch.no_grad():
        assert torch.equal(layerwise.run(m, x, W, conversion).logits, res.logits)  # deterministic


def test_gradients_cross_unequal_windows():
    m = lif_net()
    x = torch.randn(4, 1, 12, 12) * 3
    layerwise.run(m, x, [4, 2, 3, 1, 4, 2, 3]).mean_logits().sum().backward()
    assert m.stem[0].weight.grad.abs().sum() > 0


def test_fire_records_the_firing_potential():
    n = IF(1.0, 0.5)  # u: .5+.7=1.2 fire -> .2, .9, 1.6 fire -> .6, 1.3 fire -> .3
    f = layerwise.fire(n, torch.full((4, 1), 0.7))
    assert torch.equal(f.spikes.flatten(), torch.tensor([1.0, 0.0, 1.0, 1.0]))
    assert torch.allclose(f.v_fire, torch.tensor([(1.2 + 1.6 + 1.3) / 3]))
    lif = LIF(0.5, 1.0)  # u: .8, .4+.8=1.2 fire -> 0, .8, 1.2 fire
    g = layerwise.fire(lif, torch.full((4, 1), 0.8))
    assert torch.equal(g.spikes.flatten(), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert torch.allclose(g.v_fire, torch.tensor([1.2]))
    assert float(layerwise.fire(lif, torch.zeros(3, 1)).v_fire) == 0.0  # silent


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8)])
def test_mlp_forward_and_layer_major(shape):
    torch.manual_seed(0)
    m = TeasMLP(shape, 10, hidden=32)
    x = torch.rand(5, *shape) * 2
    out = m(x, 6)
    assert out.shape == (6, 5, 10) and set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(layerwise.run(m, x, [6, 6]).logits, out)
    res = layerwise.run(m, x, [6, 3])
    assert res.logits.shape == (3, 5, 10)
    res.mean_logits().sum().backward()
    assert m.stem[1].weight.grad.abs().sum() > 0  # through the output surrogate and the conversion
    with pytest.raises(SeennError, match="inputs"):
        m(torch.rand(2, 1, 9, 9), 2)


def test_bad_windows_are_named():
    m = lif_net()
    x = torch.randn(1, 1, 12, 12)
    with pytest.raises(SeennError, match="7 spiking layers"):
        layerwise.run(m, x, [4, 4])
    with pytest.raises(SeennError, match="layers.0.act1"):
        layerwise.run(m, x, [4, 0, 4, 4, 4, 4, 4])
    with pytest.raises(SeennError, match="conversion"):
        layerwise.run(m, x, [4] * 7, conversion="spline")


def test_residual_shortcut_is_converted_to_the_block_output_window():
    from seenn.teas.temporal import convert

    m = lif_net().eval()
    x = torch.randn(3, 1, 12, 12) * 3
    with torch.no_grad():
        res = layerwise.run(m, x, [4, 4, 2, 2, 2, 2, 2])
        b = m.layers[0]  # identity shortcut: the stem's train, converted 4 -> 2, is added to the main path
        f0 = layerwise.fire(m.stem_act.neuron, m.encode(x, 4).reshape(4, 3, 4, 12, 12))
        f1 = layerwise.fire(b.act1.neuron, b.bn1(b.conv1(f0.spikes.flatten(0, 1))).reshape(4, 3, 4, 12, 12))
        main = b.bn2(b.conv2(convert(f1.spikes, f1.v_fire, 1.0, 2).flatten(0, 1)))
        short = convert(f0.spikes, f0.v_fire, 1.0, 2).flatten(0, 1)
        f2 = layerwise.fire(b.act2.neuron, (main + short).reshape(2, 3, 4, 12, 12))
    assert torch.equal(res.spikes["layers.0.act2"], f2.spikes)
    assert not torch.equal(short, f0.spikes[:2].flatten(0, 1))  # the conversion is not a truncation here


def test_spike_count_ties_go_to_the_higher_membrane_potential():
    """Equal output counts: the tied class whose output neuron ends with the higher membrane potential
    (argmax alone would take the lowest tied class, class 0 when nothing fires); the tie is reported."""
    counts = torch.tensor([[2.0, 3.0, 3.0, 0.0],   # tie between 1 and 2: 2 has the higher potential
                           [0.0, 0.0, 0.0, 0.0],   # nothing fired: all tied, 3 has the highest potential
                           [1.0, 4.0, 0.0, 2.0]])  # no tie: the count decides whatever the potential
    potential = torch.tensor([[0.9, 0.1, 0.5, 0.0], [0.2, 0.1, 0.3, 0.4], [0.0, 0.0, 0.9, 0.8]])
    res = layerwise.LayerwiseResult(logits=counts.unsqueeze(0).expand(4, -1, -1) / 4, potential=potential)
    pred, tied = res.predict()
    assert pred.tolist() == [2, 3, 1] and tied.tolist() == [True, True, False]
    no_potential = layerwise.LayerwiseResult(logits=counts.unsqueeze(0))
    assert no_potential.predict()[0].tolist() == [1, 0, 1]  # plain argmax: the lowest tied class


def test_the_mlp_run_carries_its_output_potential():
    from seenn.teas.mlp import TeasMLP

    torch.manual_seed(0)
    m, x = TeasMLP((1, 4, 4), 3, hidden=8), torch.rand(5, 1, 4, 4) * 2
    with torch.no_grad():
        res = layerwise.run(m, x, [4, 4])
        m.set_timesteps(4)
        out = m.fc(m.stem_act(m.encode(x, 4))).reshape(4, 5, 3)  # the output layer input current
    u = torch.zeros(5, 3)
    for t in range(4):  # LIF with decay 1, hard reset: the final membrane by hand
        u = u + out[t]
        u = u * (u < 1.0)
    assert torch.allclose(res.potential, u, atol=1e-6)


# --- VGG-16 and ResNet-34 (the TEAS paper's Table 2 conversion rows), at 32 px and ImageNet's 224 px ---

def _active(net, x, T):
    """BatchNorm calibrated on `x` (one train-mode pass, momentum 1: each BN normalizes its input) and
    VGG's BN-less hidden FC layers scaled up, so spikes reach the last layer at init."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    if net.arch == "vgg16":
        with torch.no_grad():
            for lin in [m for m in net.classifier if isinstance(m, torch.nn.Linear)][:-1]:
                lin.weight.mul_(30)
    net.train()
    with torch.no_grad():
        net(x, T)
    return net.eval()


def _big(arch, px, neuron):
    """`arch` for `px` inputs with LIF neurons (direct) or IF neurons with a threshold per layer (converted)."""
    torch.manual_seed(0)
    model = {"arch": arch}
    if neuron == "lif":
        net = build_snn(model, NEURON, 3, 5, image_size=px)
    else:
        net = build_if_snn(model, 3, 5, image_size=px)
        for i, slot in enumerate(m for m in net.modules() if isinstance(m, TimeFold)):
            slot.neuron.threshold.fill_(0.5 + 0.05 * (i % 5))
    return net


@pytest.mark.parametrize("px", [32, 224])
@pytest.mark.parametrize("arch,neuron", [("vgg16", "lif"), ("vgg16", "if"), ("resnet34", "lif"),
                                         ("resnet34_avgpool", "if")])
def test_equal_windows_equal_forward_vgg16_resnet34(arch, neuron, px, one_thread):
    """Layer-major at equal windows is forward(x, T) on VGG-16 (its classifier's hidden FC neurons
    are spiking layers) and ResNet-34 (the stem pool before the first block), direct and converted."""
    T = 2
    x = torch.randn(1 if px == 224 else 2, 3, px, px, generator=torch.Generator().manual_seed(1))
    net = _active(_big(arch, px, neuron), x, T)
    names = layerwise.spiking_layers(net)
    assert len(names) == (15 if arch == "vgg16" else 1 + 2 * 16)
    with torch.no_grad():
        ref = net(x, T)
        res = layerwise.run(net, x, [T] * len(names))
    assert res.logits.shape == (T, x.shape[0], 5)
    assert torch.allclose(res.logits, ref, rtol=1e-5, atol=1e-5)
    assert bool((res.spikes[names[-1]] != 0).any())  # the last spiking layer fires: the logits depend on spikes


@pytest.mark.parametrize("arch", ["vgg16", "resnet34"])
def test_owners_parameters_and_cost_labels_vgg16_resnet34(arch, one_thread):
    """Each conv / FC belongs to the spiking layer whose window it runs in (the regularizer's #Para
    and the cost counter's labels read this), every layer is counted, unequal windows run."""
    from seenn.teas import cost
    from seenn.teas.regularizer import layer_parameters

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    net = _active(_big(arch, 32, "lif"), x, 2)
    L = len(layerwise.spiking_layers(net))
    owners = layerwise.synaptic_owners(net, x)
    synaptic = [n for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert set(owners) == set(synaptic) and owners["stem.0"] == 0
    if arch == "vgg16":  # the FC after the last conv unit runs in the first hidden FC neuron's window
        assert owners["layers.0.0"] == 1 and owners["classifier.1"] == 13 and owners["classifier.5"] == L - 1
    else:  # the first block's convs after the stem pool; a downsampling shortcut in its block's act2 window
        assert owners["layers.1.conv1"] == 1 and owners["layers.4.shortcut.0"] == 8 and owners["fc"] == L - 1
    params = layer_parameters(net, x)
    assert sum(params) == sum(p.numel() for n in synaptic for p in dict(net.named_modules())[n].parameters())
    c = cost.count(net, x, [2] * L)
    assert len(c.layer_ops) == L and c.once_ops > 0 and all(ops > 0 for ops in c.layer_ops[1:])
    W = [1 + (i % 3) for i in range(L)]
    with torch.no_grad():
        res = layerwise.run(net, x, W)
    assert res.logits.shape == (W[-1], 2, 5) and [s.shape[0] for s in res.spikes.values()] == W
