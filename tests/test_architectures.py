"""Every `model.arch` network: its parameter count (pinned, and derived independently below), its
output shape, stepwise engine == full forward, the ANN twin, QCFS -> IF conversion where it is
allowed and its refusal where not, and how the energy counter reads max-pooling and SEW connects."""

import pytest
import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.methods import engine
from seenn.methods.conversion import check_convertible, convert
from seenn.methods.energy import OpCounter, conv_synapses
from seenn.models import ARCHITECTURES, ann_twin, arch_config, build_if_snn, build_network, build_snn
from seenn.models.qcfs import QCFS, build_qcfs_ann
from seenn.models.resnet import ImageNetResNet
from seenn.models.sew import SEWBlock, SEWConnect, build_sew_resnet34
from seenn.snn.neurons import LIF, set_stepwise

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
BASE = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1], "sew_connect": "add"}
# (input channels, classes, input side) each arch is counted and run with
PARAM_INPUT = {"resnet34": (3, 1000), "resnet34_avgpool": (3, 1000), "sew_resnet34": (3, 1000), "vggsnn": (2, 10)}
RUN_INPUT = {"vgg16": (3, 32), "vggsnn": (2, 48), "resnet34": (3, 64), "resnet34_avgpool": (3, 64),
             "sew_resnet34": (3, 64)}  # else 3 ch, 8 px


pytestmark = pytest.mark.usefixtures("one_thread")  # sized for one core (conftest.one_thread)


def cfg(arch: str, **kw) -> dict:
    return {**BASE, "arch": arch, **kw}


# --- parameter counts derived by hand (the formulas below, written from the layouts in the
# docstrings of models/resnet.py, sew.py, vgg.py, independent of the model code) -------------

def bn(c):
    return 2 * c  # BatchNorm2d: weight + bias


def table6_count(cin, stem, widths, blocks, k):
    """CIFAR ResNet: conv3x3 stem + BN; per block two conv3x3 + BN, a downsampling shortcut
    conv1x1 + BN where the shape changes; FC widths[-1] -> k with bias. No conv has a bias."""
    n, c = 9 * cin * stem + bn(stem), stem
    for w, b in zip(widths, blocks):
        for _ in range(b):
            n += 9 * c * w + bn(w) + 9 * w * w + bn(w) + ((c * w + bn(w)) if c != w else 0)
            c = w
        # the first block of a stage after the first has stride 2 and a shortcut: c != w there
    return n + c * k + k


def vgg_count(cin, widths, hidden, flat, k):
    """conv3x3 with bias + BN per unit; FC layers with bias."""
    n, c = 0, cin
    for w in widths:
        n, c = n + 9 * c * w + w + bn(w), w
    for h in hidden:
        n, flat = n + flat * h + h, h
    return n + flat * k + k


PARAMS = {  # pinned; each equals the derivation on the right (test_pinned_counts_match_their_derivation)
    "resnet": 78042,              # table6_count(3, 16, [16, 32, 64], [1, 1, 1], 10): the default sizes
    "resnet18": 11173962,         # table6_count(3, 64, [64, 128, 256, 512], [2, 2, 2, 2], 10)
    "resnet19": 12569226,         # table6_count(3, 128, [128, 256, 512], [3, 3, 2], 10)
    "resnet20": 175258,           # table6_count(3, 16, [16, 32, 64], [2, 2, 2], 10)
    "resnet20_authors": 12569226,  # the same layout as ResNet-19 (stem 128, [3, 3, 2] at 128/256/512)
    "resnet34": 21797672,         # torchvision.models.resnet34() (1000 classes), checked below
    "resnet34_avgpool": 21797672,  # the same network with an average pool in the stem (no parameters)
    "sew_resnet34": 21797672,     # the same convs, BNs and FC as torchvision's resnet34 (neurons have none)
    "vgg16": 33646666,            # vgg_count(3, D's 13 widths, (4096, 4096), 512, 10): QCFS's classifier
    "vggsnn": 9271498,            # vgg_count(2, [64, 128, 256, 256, 512, 512, 512, 512], (), 512 * 3 * 3, 10)
}
DEFAULT_MODEL = {"arch": "resnet", "stem_channels": 16, "widths": [16, 32, 64], "blocks": [1, 1, 1], "sew_connect": "add"}
VGG16_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def build(arch: str, **kw) -> nn.Module:
    cin, k = PARAM_INPUT.get(arch, (3, 10))
    model = DEFAULT_MODEL if arch == "resnet" else cfg(arch, **kw)
    return build_snn(model, NEURON, cin, k, event=arch == "vggsnn")


def test_every_registered_arch_is_pinned():
    assert set(PARAMS) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(PARAMS))
def test_parameter_count(arch):
    assert n_params(build(arch)) == PARAMS[arch]


def test_pinned_counts_match_their_derivation():
    assert PARAMS["resnet"] == table6_count(3, 16, [16, 32, 64], [1, 1, 1], 10)
    assert PARAMS["resnet18"] == table6_count(3, 64, [64, 128, 256, 512], [2, 2, 2, 2], 10)
    assert PARAMS["resnet19"] == PARAMS["resnet20_authors"] == table6_count(3, 128, [128, 256, 512], [3, 3, 2], 10)
    assert PARAMS["resnet20"] == table6_count(3, 16, [16, 32, 64], [2, 2, 2], 10)
    assert PARAMS["vgg16"] == vgg_count(3, VGG16_WIDTHS, (4096, 4096), 512, 10)
    assert PARAMS["vggsnn"] == vgg_count(2, [64, 128, 256, 256, 512, 512, 512, 512], (), 512 * 3 * 3, 10)


def test_resnet34_and_sew_resnet34_have_torchvisions_parameters():
    torchvision = pytest.importorskip("torchvision")
    ref = torchvision.models.resnet34()
    assert n_params(ref) == PARAMS["resnet34"] == PARAMS["sew_resnet34"] == PARAMS["resnet34_avgpool"]
    # the same tensors in the same order, shape by shape
    shapes = [tuple(p.shape) for p in ref.parameters()]
    assert [tuple(p.shape) for p in build("resnet34").parameters()] == shapes
    assert [tuple(p.shape) for p in build("resnet34_avgpool").parameters()] == shapes
    assert [tuple(p.shape) for p in build("sew_resnet34").parameters()] == shapes


def test_the_default_arch_builds_the_same_tree_as_before():
    """`resnet` keeps the module tree and parameter names the default outputs were made with."""
    net = build("resnet")
    names = [n for n, _ in net.named_parameters()]
    assert names[:3] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]
    assert names[-2:] == ["fc.weight", "fc.bias"]
    assert "layers.1.shortcut.1.weight" in names  # avgpool + conv1x1 + BN shortcut
    assert isinstance(net.layers[1].shortcut[0], nn.AvgPool2d)


def test_a_checkpoint_records_only_the_keys_the_arch_reads():
    assert arch_config(DEFAULT_MODEL) == {"arch": "resnet", "stem_channels": 16, "widths": [16, 32, 64],
                                          "blocks": [1, 1, 1]}
    assert list(arch_config(DEFAULT_MODEL)) == ["arch", "stem_channels", "widths", "blocks"]
    assert arch_config(cfg("sew_resnet34", sew_connect="iand")) == {"arch": "sew_resnet34", "sew_connect": "iand"}
    assert arch_config(cfg("vgg16")) == {"arch": "vgg16"}
    # what a checkpoint records rebuilds the same network
    a, b = build_snn(cfg("resnet20"), NEURON, 3, 10), build_snn(arch_config(cfg("resnet20")), NEURON, 3, 10)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]


# --- running every network -------------------------------------------------------------------

def inputs(arch: str, batch: int = 2, T: int = 2) -> torch.Tensor:
    cin, px = RUN_INPUT.get(arch, (3, 8))
    g = torch.Generator().manual_seed(0)
    if arch == "vggsnn":  # event frames [B, T, 2, 48, 48] holding event counts
        return torch.randint(0, 3, (batch, T, cin, px, px), generator=g).float()
    return torch.randn(batch, cin, px, px, generator=g)


def active_snn(arch: str, x: torch.Tensor, T: int, **kw) -> nn.Module:
    """A small-class LIF network whose neurons fire throughout: BatchNorm calibrated on `x` (one
    train-mode pass with momentum 1, so each BN normalizes its input) and the BN-less hidden FC
    layers of VGG-16 scaled up. Without this, spikes die out a few layers in at init."""
    torch.manual_seed(0)
    cin = x.shape[-3]
    net = build_snn(cfg(arch, **kw), NEURON, cin, 5, event=arch == "vggsnn")
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    if arch == "vgg16":
        with torch.no_grad():
            for lin in [m for m in net.classifier if isinstance(m, nn.Linear)][:-1]:
                lin.weight.mul_(30)
    net.train()
    with torch.no_grad():
        net(x, T)
    return net.eval()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_shape_engine_stepwise_and_ann_twin(arch):
    T = 2
    x = inputs(arch, T=T)
    net = active_snn(arch, x, T)
    fired = []
    hooks = [m.register_forward_hook(lambda mod, i, o: fired.append(float((o != 0).float().mean())))
             for m in net.modules() if isinstance(m, LIF)]
    with torch.no_grad():
        out = net(x, T)
    for h in hooks:
        h.remove()
    assert out.shape == (T, 2, 5)
    assert min(fired) > 0  # every neuron layer spikes, so the comparisons below compare something
    assert not torch.allclose(out[0], out[1])
    z = out.cumsum(0)
    res = engine.run_fixed(net, x, T)  # stepwise: one timestep at a time, membranes kept
    assert torch.allclose(res.logits, z[-1], atol=1e-5)
    assert torch.equal(res.exit_t, torch.full((2,), T))
    # stepwise through forward itself (neurons.set_stepwise), timestep by timestep
    set_stepwise(net, True)
    try:
        with torch.no_grad():
            steps = [net(x[:, t : t + 1] if arch == "vggsnn" else x, 1)[0] for t in range(T)]
    finally:
        set_stepwise(net, False)
    assert torch.allclose(torch.stack(steps), out, atol=1e-5)
    ann = ann_twin(net)
    with torch.no_grad():
        y = ann(x, 1)
    assert y.shape == (1, 2, 5) and torch.isfinite(y).all()
    assert not any(isinstance(m, LIF) for m in ann.modules())


def test_vgg16_refuses_an_input_size_it_is_not_built_for():
    net = build_snn(cfg("vgg16"), NEURON, 3, 10).eval()
    with pytest.raises(SeennError, match=r"model.arch 'vgg16'.*\[512, 1, 1\], got \[512, 2, 2\]"):
        net(torch.zeros(1, 3, 64, 64), 1)
    with pytest.raises(SeennError, match=r"model.arch 'vgg16' needs inputs of at least 32 px.*got 16 px"):
        build_snn(cfg("vgg16"), NEURON, 3, 10, image_size=16)


def test_vgg16_sizes_its_classifier_from_the_input():
    """32 px (image_size unset or 32): the same network, parameter for parameter, as before; 224 px:
    FC 25088 -> 4096, torchvision's vgg16_bn parameter count at 1000 classes."""
    torch.manual_seed(0)
    a = build_snn(cfg("vgg16"), NEURON, 3, 10)
    torch.manual_seed(0)
    b = build_snn(cfg("vgg16"), NEURON, 3, 10, image_size=32)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    big = build_snn(cfg("vgg16"), NEURON, 3, 1000, image_size=224)
    assert big.feature_shape == (512, 7, 7) and big.classifier[1].in_features == 25088
    assert n_params(big) == vgg_count(3, VGG16_WIDTHS, (4096, 4096), 512 * 7 * 7, 1000)
    torchvision = pytest.importorskip("torchvision")
    assert n_params(big) == n_params(torchvision.models.vgg16_bn())


def test_unknown_sew_connect_is_refused():
    with pytest.raises(ValueError, match="unknown SEW connect function 'or'"):
        build_snn(cfg("sew_resnet34", sew_connect="or"), NEURON, 3, 10)


def test_sew_connect_functions_follow_the_sew_paper():
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])  # residual spikes A
    s = torch.tensor([0.0, 1.0, 0.0, 1.0])  # shortcut spikes S
    assert SEWConnect("add")(a, s).tolist() == [0, 1, 1, 2]
    assert SEWConnect("iand")(a, s).tolist() == [0, 1, 0, 0]  # (not A) and S
    net = build_snn(cfg("sew_resnet34", sew_connect="iand"), NEURON, 3, 10)
    assert {m.mode for m in net.modules() if isinstance(m, SEWConnect)} == {"iand"}
    blocks = [m for m in net.modules() if isinstance(m, SEWBlock)]
    assert len(blocks) == 3 + 4 + 6 + 3
    down = [b for b in blocks if isinstance(b.shortcut, nn.Sequential)]
    assert len(down) == 3 and all(b.shortcut[0].stride == (2, 2) for b in down)  # conv1x1 stride 2 + BN + neuron


# --- conversion ------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,px", [("vgg16", 32), ("resnet20_authors", 8), ("resnet34_avgpool", 32)])
def test_qcfs_ann_converts_to_an_if_snn(arch, px):
    torch.manual_seed(0)
    ann = build_qcfs_ann(cfg(arch), 4, 2.0, 3, 5).eval()
    x = torch.randn(2, 3, px, px)
    with torch.no_grad():
        a = ann(x, 1)
    snn = convert(ann)
    # the converted state dict loads into the network evaluate/energy rebuild from a checkpoint
    rebuilt = build_if_snn(arch_config(cfg(arch)), 3, 5)
    rebuilt.load_state_dict(snn.state_dict())
    rebuilt.eval()
    with torch.no_grad():
        out = rebuilt(x, 4)
    assert a.shape == (1, 2, 5) and out.shape == (4, 2, 5)
    with torch.no_grad():
        assert torch.equal(snn(x, 4), out)


@pytest.mark.parametrize("arch", ["resnet34", "sew_resnet34"])
def test_conversion_refuses_max_pooling_and_sew(arch):
    with pytest.raises(SeennError, match=f"^model.arch '{arch}' cannot be converted from a QCFS ANN: "):
        build_qcfs_ann(cfg(arch), 4, 2.0, 3, 10)
    ann = build_network(cfg(arch), lambda: QCFS(4, 2.0), 3, 10)  # built around the refusal above
    with pytest.raises(SeennError, match=f"^model.arch '{arch}' cannot be converted: layer 'layers.0' is max-pooling"):
        check_convertible(ann)


def test_conversion_refuses_a_sew_connect_even_without_max_pooling():
    net = ImageNetResNet(3, 10, lambda: QCFS(4, 2.0), lambda i, o, s, n: SEWBlock(i, o, s, n, "add"),
                         widths=(4, 4, 4, 4), blocks=(1, 1, 1, 1))
    net.layers[0] = nn.Identity()
    net.arch = "sew_resnet34"
    with pytest.raises(SeennError, match=r"model.arch 'sew_resnet34' cannot be converted: layer 'layers.1.connect' "
                                         r"is a spike-element-wise connect \(add\)"):
        check_convertible(net)


# --- energy counting of max-pooling and SEW connects ------------------------------------------

def tiny_sew(connect: str) -> ImageNetResNet:
    torch.manual_seed(0)
    lif = lambda: LIF(0.5, 1.0)  # noqa: E731
    net = ImageNetResNet(3, 5, lif, lambda i, o, s, n: SEWBlock(i, o, s, n, connect),
                         widths=(4, 8, 8, 8), blocks=(3, 1, 1, 1))
    return net


@pytest.mark.parametrize("connect", ["add", "iand"])
def test_energy_counts_sew_outputs_as_spike_counts(connect):
    """The first block's conv1 reads max-pooled spikes (0/1); the third block's conv1 reads the
    second block's connect output: 0/1/2/3 under ADD (an identity-shortcut chain), whose ACs are
    its values times the synapses they reach; 0/1 under IAND."""
    net = tiny_sew(connect)
    x = torch.randn(3, 3, 32, 32) * 3
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(x, 1)
    net.eval()
    seen = {}
    names = {"layers.1.conv1": net.layers[1].conv1, "layers.3.conv1": net.layers[3].conv1}

    def keep(name):
        def hook(mod, args):  # returns None: the layer still gets the very tensor the counter tracks
            seen.setdefault(name, args[0].clone())
        return hook

    hooks = [m.register_forward_pre_hook(keep(n)) for n, m in names.items()]
    with OpCounter(net) as counter:
        engine.run_fixed(net, x, 1, counter=counter)
    for h in hooks:
        h.remove()
    pooled = seen["layers.1.conv1"]
    assert set(pooled.unique().tolist()) <= {0.0, 1.0} and pooled.sum() > 0  # max-pooled spikes stay spikes
    assert counter.kinds["layers.1.conv1"] == "AC"
    assert counter.ops[("layers.1.conv1", 1)][0] == pytest.approx(float(conv_synapses(pooled, names["layers.1.conv1"]).sum()))
    joined = seen["layers.3.conv1"]
    if connect == "add":
        assert joined.max() >= 2  # spike counts, not spikes
    else:
        assert set(joined.unique().tolist()) <= {0.0, 1.0}
    assert counter.kinds["layers.3.conv1"] == "AC"
    expected = float(conv_synapses(joined, names["layers.3.conv1"]).sum())  # value x synapses
    assert counter.ops[("layers.3.conv1", 1)][0] == pytest.approx(expected)
    assert counter.ops[("layers.3.conv1", 1)][1] == 0
    assert counter.kinds["fc"] == "AC"  # global average pooling of spike counts, then the classifier
    assert counter.kinds["stem.0"] == "MAC"  # the encoding layer on the image
