"""QCFS activation, IF equivalence and ANN-to-SNN conversion (models/qcfs.py, convert.py)."""

import pytest
import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.methods.conversion import check_convertible, convert, thresholds
from seenn.models import build_if_snn
from seenn.models.qcfs import QCFS, build_qcfs_ann, qcfs
from seenn.snn.neurons import IF, set_stepwise

MODEL = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}


def test_qcfs_values_match_the_formula():
    lam, L = torch.tensor(2.0), 4
    x = torch.tensor([-1.0, 0.0, 0.2, 0.26, 0.74, 0.76, 1.9, 2.0, 5.0])
    # lam * clip(floor(x * L / lam + 0.5) / L, 0, 1): steps of 0.5, rounding to the nearest level
    assert qcfs(x, lam, L).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 2.0, 2.0, 2.0])


def test_qcfs_gradient_is_straight_through_and_reaches_lambda():
    act = QCFS(4, 2.0)
    x = torch.tensor([-0.5, 0.3, 1.1, 3.0], requires_grad=True)
    act(x).sum().backward()
    assert x.grad.tolist() == pytest.approx([0.0, 1.0, 1.0, 0.0])  # zero outside [0, lam], identity inside
    assert act.lam.grad is not None and float(act.lam.grad) != 0


class _RefFloor(torch.autograd.Function):
    """The QCFS authors' `myfloor`: floor forward, gradient passed unchanged."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _authors_myfloor(x, up, t):
    """The authors' `MyFloor.forward`: divide, floor (straight-through), clamp after, scale."""
    x = x / up
    x = _RefFloor.apply(x * t + 0.5) / t
    x = torch.clamp(x, 0, 1)
    return x * up


@pytest.mark.parametrize("L", [1, 4, 8])
def test_qcfs_matches_the_authors_myfloor_in_value_and_both_gradients(L):
    """Floor then clamp, as `MyFloor` does: clamping first gives equal values but different x- and
    lambda-gradients for inputs within half a level outside [0, lam], which the grid covers."""
    grid = torch.linspace(-1.0, 3.0, 4001, dtype=torch.float64)  # lam = 2: both clip edges, 0.001 apart
    grads = []
    for fn in (lambda x, lam: qcfs(x, lam, L), lambda x, lam: _authors_myfloor(x, lam, L)):
        x = grid.clone().requires_grad_(True)
        lam = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        y = fn(x, lam)
        y.sum().backward()
        grads.append((y.detach(), x.grad, lam.grad))
    (y, gx, glam), (ry, rgx, rglam) = grads
    assert torch.equal(y, ry)
    assert torch.equal(gx, rgx)
    assert float(glam) == pytest.approx(float(rglam), rel=1e-12)


@pytest.mark.parametrize("L", [1, 2, 4, 8])
def test_if_neuron_reproduces_qcfs_after_L_steps_on_constant_input(L):
    """Reset by subtraction + membrane starting at lam/2: over T = L steps of a constant input x,
    the mean output is exactly the QCFS value lam * clip(floor(x L / lam + 1/2) / L, 0, 1)."""
    lam = torch.tensor(1.7)
    g = torch.Generator().manual_seed(L)
    x = torch.rand(2000, generator=g) * 2.6 * lam - 0.4 * lam  # below 0, inside [0, lam] and above lam
    out = IF(lam, init_fraction=0.5)(x.expand(L, -1))  # [L, N]
    assert torch.allclose(out.mean(0), qcfs(x, lam, L), atol=1e-5)


def _blobs(n: int, seed: int):
    """A separable 10-class toy image set: one random prototype per class plus noise."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(10, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (n,), generator=g)
    return protos[y] + 0.5 * torch.randn(n, 1, 12, 12, generator=g), y


@pytest.fixture(scope="module")
def trained_ann():
    torch.manual_seed(0)
    ann = build_qcfs_ann(MODEL, 8, 2.0, 1, 10)
    opt = torch.optim.SGD(ann.parameters(), lr=0.1, momentum=0.9)
    x, y = _blobs(1024, 1)
    ann.train()
    for _ in range(5):
        for i in range(0, 1024, 64):
            loss = nn.functional.cross_entropy(ann(x[i : i + 64], 1)[0], y[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return ann.eval()


def test_converted_snn_agrees_with_the_ann_at_large_T(trained_ann):
    """L = 8 levels: by T = 128 the SNN's accumulated prediction is the ANN's on >= 99 % of
    samples (with L = 4 this toy plateaus near 97 %: as T grows the IF rates approach the
    unquantized clip(x, 0, lam), not the L-level QCFS value, so L must not be too coarse)."""
    x, y = _blobs(400, 2)
    snn = convert(trained_ann)
    with torch.no_grad():
        ann_pred = trained_ann(x, 1)[0].argmax(-1)
        z = snn(x, 128).cumsum(0)  # accumulated logits z_t
    assert float((ann_pred == y).float().mean()) > 0.9  # the toy ANN learned something
    agree = [float((z[t - 1].argmax(-1) == ann_pred).float().mean()) for t in (2, 128)]
    assert agree[1] >= 0.99
    assert agree[1] > agree[0]  # more timesteps, closer to the ANN


def test_converted_snn_has_if_neurons_with_the_ann_thresholds(trained_ann):
    snn = convert(trained_ann)
    lams = thresholds(trained_ann)
    ifs = {n.removesuffix(".neuron"): m for n, m in snn.named_modules() if isinstance(m, IF)}
    assert set(ifs) == set(lams)
    for name, m in ifs.items():
        assert float(m.threshold) == pytest.approx(lams[name]) and m.init_fraction == 0.5
    assert not any(isinstance(m, QCFS) for m in snn.modules())
    assert all(isinstance(m, QCFS) for n, m in trained_ann.named_modules() if n.endswith(".neuron"))  # ANN untouched


def test_converted_state_dict_rebuilds_into_build_if_snn(trained_ann):
    snn = convert(trained_ann)
    rebuilt = build_if_snn(MODEL, 1, 10).eval()
    rebuilt.load_state_dict(snn.state_dict())
    x, _ = _blobs(20, 3)
    with torch.no_grad():
        assert torch.equal(rebuilt(x, 8), snn(x, 8))


def test_converted_snn_stepwise_equals_multistep(trained_ann):
    snn = convert(trained_ann)
    x, _ = _blobs(16, 4)
    with torch.no_grad():
        multi = snn(x, 12)
        set_stepwise(snn, True)
        steps = torch.cat([snn(x, 1) for _ in range(12)])
        set_stepwise(snn, False)
    assert torch.allclose(multi, steps, atol=1e-5)


def test_max_pooling_is_refused_with_a_clear_error():
    ann = build_qcfs_ann(MODEL, 4, 2.0, 1, 10)
    ann.pool = nn.AdaptiveMaxPool2d(1)
    with pytest.raises(SeennError, match="max-pooling"):
        check_convertible(ann)


def test_relu_and_nonpositive_threshold_are_refused():
    ann = build_qcfs_ann(MODEL, 4, 2.0, 1, 10)
    ann.layers[0].act1.neuron = nn.ReLU()
    with pytest.raises(SeennError, match="'layers.0.act1' holds ReLU, not QCFS"):
        convert(ann)
    ann = build_qcfs_ann(MODEL, 4, 2.0, 1, 10)
    ann.fc = nn.Sequential(nn.ReLU(), ann.fc)
    with pytest.raises(SeennError, match="only QCFS activations convert"):
        convert(ann)
    ann = build_qcfs_ann(MODEL, 4, 2.0, 1, 10)
    with torch.no_grad():
        ann.stem_act.neuron.lam.fill_(-0.1)
    with pytest.raises(SeennError, match="conversion.lambda_init"):
        convert(ann)
