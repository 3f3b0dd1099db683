"""Operation counts against hand computations, and the energy formula."""

import pytest
import torch
from torch import nn

from seenn.methods import engine
from seenn.methods.energy import ADD_PJ, MUL_PJ, OpCounter, conv_synapses, energy_pj, is_spike_tensor, linear_synapses
from seenn.snn.neurons import LIF


def test_conv_acs_hand_computed():
    # 3x3 input, 3x3 kernel, padding 1, stride 1: an input at the centre reaches all 9 output
    # positions, one at a corner 4, one on an edge 6; each output position has 2 channels.
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    spikes = torch.zeros(1, 1, 3, 3)
    spikes[0, 0, 1, 1] = 1  # centre: 9
    spikes[0, 0, 0, 0] = 1  # corner: 4
    spikes[0, 0, 0, 1] = 1  # edge: 6
    assert conv_synapses(spikes, conv).tolist() == [(9 + 4 + 6) * 2]


def test_dense_macs_hand_computed():
    # every synapse of a 3x3/pad-1 conv on a 3x3 input: 4 corners x 4 + 4 edges x 6 + centre 9
    # = 49 taps per (in, out) channel pair; 2 in x 3 out channels
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    assert conv_synapses(torch.ones(1, 2, 3, 3), conv).tolist() == [49 * 2 * 3]
    # the textbook count (output elements x fan-in, 9 x 9 = 81) would add the 32 padding taps;
    # without padding the two agree: a 5x5 input gives 3x3 outputs x 9 taps = 81 per channel pair
    conv = nn.Conv2d(2, 3, 3, padding=0, bias=False)
    assert conv_synapses(torch.ones(1, 2, 5, 5), conv).tolist() == [9 * 9 * 2 * 3]


@pytest.mark.parametrize("size, pad, stride", [(3, 1, 1), (5, 1, 2), (6, 2, 3), (4, 0, 1)])
def test_dense_counts_equal_taps_inside_the_image(size, pad, stride):
    """Dense count = (output position, kernel tap) pairs whose input lies inside the image,
    enumerated here one by one: padding taps are not synapses."""
    k = 3
    out = (size + 2 * pad - k) // stride + 1
    inside = sum(0 <= o1 * stride + k1 - pad < size and 0 <= o2 * stride + k2 - pad < size
                 for o1 in range(out) for o2 in range(out) for k1 in range(k) for k2 in range(k))
    conv = nn.Conv2d(2, 3, k, stride=stride, padding=pad, bias=False)
    assert conv_synapses(torch.ones(1, 2, size, size), conv).tolist() == [inside * 2 * 3]


def test_strided_and_grouped_conv_counts():
    # stride 2, no padding, 2x2 kernel on 4x4: every input position reaches exactly one output
    conv = nn.Conv2d(4, 6, 2, stride=2, groups=2, bias=False)
    x = torch.zeros(1, 4, 4, 4)
    x[0, 0, 0, 0] = 1  # group 0: reaches 6 / 2 = 3 output channels
    x[0, 3, 3, 3] = 1  # group 1: 3 output channels
    assert conv_synapses(x, conv).tolist() == [6]
    # the last row/column of a 5x5 input is never read by a stride-2 2x2 kernel
    conv = nn.Conv2d(1, 1, 2, stride=2, bias=False)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 4, 4] = 1
    assert conv_synapses(x, conv).tolist() == [0]


def test_linear_counts():
    lin = nn.Linear(5, 7)
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0], [0.0] * 5])
    assert linear_synapses(x, lin).tolist() == [21, 0]


def test_spike_detection():
    assert is_spike_tensor(torch.tensor([0.0, 1.0, 1.0]))
    assert is_spike_tensor(torch.tensor([0.0, 2.5, 2.5]))  # IF spikes scaled by the threshold
    assert is_spike_tensor(torch.zeros(4))
    assert not is_spike_tensor(torch.tensor([0.0, 1.0, 0.5]))
    assert not is_spike_tensor(torch.tensor([0.0, -1.0]))


def test_energy_formula():
    assert energy_pj(10, 0) == pytest.approx(10 * ADD_PJ)
    assert energy_pj(0, 10) == pytest.approx(10 * (MUL_PJ + ADD_PJ))
    assert (ADD_PJ, MUL_PJ) == (0.9, 4.6)


class TwoLayer(nn.Module):
    """Encoding conv on a real image -> LIF -> conv on spikes -> avgpool -> 1x1 conv -> global
    pool -> linear: every counting rule once."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.lif = LIF()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.lif2 = LIF()
        self.pool = nn.AvgPool2d(2)
        self.short = nn.Conv2d(3, 4, 1, bias=False)
        self.lif3 = LIF()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        s1 = self.lif(self.enc(x))
        s2 = self.lif2(self.conv(s1))
        s3 = self.lif3(self.short(self.pool(s2)))
        return self.fc(torch.flatten(self.gap(s3), 1)), (s1, s2, s3)


def test_counter_rules_on_a_tiny_network():
    torch.manual_seed(0)
    net = TwoLayer()
    for m in net.modules():
        if isinstance(m, LIF):
            m.stepwise = True
    with torch.no_grad():
        for conv in (net.enc, net.conv, net.short):
            conv.weight.mul_(6)
    x = torch.randn(2, 1, 4, 4)
    with torch.no_grad(), OpCounter(net) as counter:
        _, (s1, s2, s3) = net(x)
        counter.set_timestep(2)
        _, (t1, t2, t3) = net(x)
    assert s1.sum() > 0 and s2.sum() > 0 and s3.sum() > 0 and t1.sum() > 0
    k = counter.kinds
    assert k == {"enc": "MAC", "conv": "AC", "short": "AC", "fc": "AC"}
    ops = counter.ops
    # encoding layer: every in-bounds synapse of a 3x3/pad-1 conv on 4x4: (4*3-2)^2 = 100 taps, 2 outputs
    assert ops[("enc", 1)] == [0.0, 2 * 100 * 2]
    assert ops[("conv", 1)][0] == float(conv_synapses(s1, net.conv).sum())
    # avgpool(2) then 1x1 conv: each spike of s2 reaches one pooled position and its 4 outputs
    assert ops[("short", 1)][0] == float(s2.sum()) * 4
    # global pool then linear: each spike of s3 reaches the 5 outputs
    assert ops[("fc", 1)][0] == float(s3.sum()) * 5
    assert ops[("fc", 2)][0] == float(t3.sum()) * 5
    acs, macs = counter.totals()
    assert macs == 2 * 400 and acs == sum(v[0] for v in ops.values())
    assert [a for a, _ in counter.per_timestep(2)] == [sum(ops[(n, t)][0] for n in k) for t in (1, 2)]


def test_dense_counter_counts_macs_everywhere():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 3))
    with torch.no_grad(), OpCounter(net, dense=True) as counter:
        net(torch.randn(5, 1, 4, 4))
    assert counter.kinds == {"0": "MAC", "3": "MAC"}
    assert counter.totals() == (0.0, 5 * (100 * 2 + 32 * 3))


def test_counts_follow_the_engine_timesteps_and_exits():
    from test_engine import posthoc_logits, spread_alpha, tiny

    model = tiny()
    torch.manual_seed(1)
    x = torch.randn(20, 1, 12, 12) * 2
    z = posthoc_logits(model, x, 4)
    with OpCounter(model) as full:
        engine.run_fixed(model, x, 4, counter=full)
    stem_macs = full.ops[("stem.0", 1)][1]
    assert stem_macs > 0 and all(t == 1 for (name, t) in full.ops if name == "stem.0")  # the stem runs once
    # fixed T: per-timestep counts add up; a sample running fewer steps costs fewer ops
    per_t = full.per_timestep(4)
    assert sum(a for a, _ in per_t) == full.totals()[0]
    with OpCounter(model) as early:
        res = engine.run_seenn1(model, x, 4, spread_alpha(z, "confidence"), "confidence", counter=early)
    assert res.exit_t.float().mean() < 4
    assert early.totals()[0] < full.totals()[0]
    assert early.totals()[1] == stem_macs
    # counts are exact per sample: running the early-exiting samples one by one gives the same total
    with OpCounter(model) as single:
        for i in range(len(x)):
            engine.run_fixed(model, x[i : i + 1], int(res.exit_t[i]), counter=single)
    assert single.totals() == early.totals()


def test_counts_do_not_depend_on_the_energy_batch_size():
    """Regression: each engine run computes the stem when its samples join; from the second batch
    on those MACs were filed under the previous batch's last timestep."""
    from test_engine import posthoc_logits, spread_alpha, tiny

    from seenn.methods.energy import count_run

    model = tiny()
    torch.manual_seed(2)
    x = torch.randn(251, 1, 12, 12) * 2  # more than 250: the last batch of 250 holds one sample
    alpha = spread_alpha(posthoc_logits(model, x, 4), "confidence")
    runs = {"fixed": lambda xb, counter: engine.run_fixed(model, xb, 4, counter=counter),
            "seenn1": lambda xb, counter: engine.run_seenn1(model, xb, 4, alpha, "confidence", counter=counter)}
    for name, run_batch in runs.items():
        counts = {bs: count_run(model, run_batch, x, bs)[0] for bs in (1, 7, 250, len(x))}
        whole = counts[len(x)]
        assert whole.ops[("stem.0", 1)][1] > 0 and not any(t > 1 for (layer, t) in whole.ops if layer == "stem.0")
        for bs, counter in counts.items():
            assert counter.per_timestep(4) == whole.per_timestep(4), (name, bs)
            assert dict(counter.ops) == dict(whole.ops), (name, bs)


def test_authors_counting_convention():
    """The authors' counter: Conv2d only (no classifier), the encoding conv as MACs at every
    timestep run; this project's counts are otherwise unchanged."""
    from test_engine import tiny

    model = tiny()
    torch.manual_seed(1)
    x = torch.randn(6, 1, 12, 12) * 2
    with OpCounter(model) as c:
        engine.run_fixed(model, x, 3, counter=c)
    assert c.linear == {"fc"}
    acs, macs = c.totals()
    fc_acs = sum(a for (layer, _), (a, _) in c.ops.items() if layer == "fc")
    stem = c.ops[("stem.0", 1)][1]
    a_acs, a_macs = c.authors_convention(len(x), 3.0)
    assert a_acs == pytest.approx((acs - fc_acs) / 6) and a_macs == pytest.approx(3 * stem / 6)
    # timesteps 1..2 only: the stem twice
    two = c.authors_convention(len(x), 2.0, max_t=2)
    assert two[1] == pytest.approx(2 * stem / 6)
    assert two[0] == pytest.approx(sum(a for (layer, t), (a, _) in c.ops.items() if layer != "fc" and t <= 2) / 6)
