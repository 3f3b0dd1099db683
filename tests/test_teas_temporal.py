"""TEAS Eq. 3 + linear mapping between windows: expand, shrink, equal, each hand-computed, under the
printed reading (`clip`) and the continuous one (x~ rescaled onto [0, T^l))."""

import pytest
import torch

from seenn.common.errors import SeennError
from seenn.teas import temporal


def train(*rows):
    """Spike trains [T, N] from one row of T spikes per neuron."""
    return torch.tensor(rows, dtype=torch.float32).T.contiguous()


def test_expand_uses_the_firing_potential():
    # T 2 -> 4, threshold 1. Neuron counts 1, 2, 0, 1 with mean firing potentials 1.5, 1.0, -, 1.0:
    # x~ = 1 + 1 - 1/1.5 = 4/3 -> n = floor(2 * 4/3 + .5) = 3; x~ = 2 + 1 - 1 = 2 -> 4; silent -> 0;
    # x~ = 1 -> 2. The plain linear map would give 2 to the first neuron: Eq. 3 adds a level.
    s = train([1, 0], [1, 1], [0, 0], [0, 1])
    v = torch.tensor([1.5, 1.0, 0.0, 1.0])
    out = temporal.convert(s, v, 1.0, 4, expansion="clip")
    assert torch.equal(out, train([1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]))


def test_shrink_rounds_half_up():
    # T 4 -> 2. count 3, V 1.2: x~ = 3 + 1 - 1/1.2 = 3.1667 -> floor(1.5833 + .5) = 2;
    # count 1, V 4: x~ = 1.75 -> floor(.875 + .5) = 1; count 2, V 1: x~ = 2 -> 1.0 + .5 -> 1 (half up);
    # count 1, V 1: x~ = 1 -> floor(.5 + .5) = 1.
    s = train([1, 1, 0, 1], [0, 0, 1, 0], [1, 0, 1, 0], [0, 0, 0, 1])
    v = torch.tensor([1.2, 4.0, 1.0, 1.0])
    out = temporal.convert(s, v, 1.0, 2, expansion="clip")
    assert torch.equal(out, train([1, 1], [1, 0], [1, 0], [1, 0]))
    assert temporal.mapped_count(torch.tensor([2.5]), 4, 4).item() == 3  # half up, not half to even


def test_continuous_expand_rescales_onto_the_input_window():
    # The same trains as above, continuous: x~ times T_in / (T_in + 1) = 2/3. 4/3 -> 8/9 -> floor(16/9 + .5) = 2;
    # 2 -> 4/3 -> floor(8/3 + .5) = 3; silent -> 0; 1 -> 2/3 -> floor(4/3 + .5) = 1.
    s = train([1, 0], [1, 1], [0, 0], [0, 1])
    out = temporal.convert(s, torch.tensor([1.5, 1.0, 0.0, 1.0]), 1.0, 4)
    assert torch.equal(out, train([1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]))


def test_expanding_a_one_step_window_gains_levels_only_when_continuous():
    # T^l = 1 -> T^{l+1} = 4, one spike each at firing potentials from the threshold up: the printed x~
    # is in [1, 2), times 4 clipped to 4: all or nothing. Continuous: x~ / 2 in [.5, 1) -> 2, 3 or 4.
    s = train([1], [1], [1], [1], [1], [0])
    v = torch.tensor([1.0, 1.2, 1.6, 3.0, 50.0, 0.0])
    levels = {k: set(temporal.convert(s, v, 1.0, 4, expansion=k).sum(0).tolist()) for k in ("clip", "continuous")}
    assert levels["clip"] == {0.0, 4.0}
    assert levels["continuous"] == {0.0, 2.0, 3.0, 4.0} and len(levels["continuous"]) > 2


def test_continuous_never_saturates_the_target_window():
    # The printed x~ reaches T_in + 1 and needs the clip; the continuous one stays below T_in, so the
    # mapped count stays within the target window before any clipping, for any count and potential.
    g = torch.Generator().manual_seed(0)
    for t_in, t_out in ((1, 4), (2, 3), (4, 4), (3, 16), (8, 2)):
        count = torch.randint(0, t_in + 1, (500,), generator=g).float()
        v = 1.0 + torch.rand(500, generator=g) * torch.tensor([0.0, 1.0, 1e6])[torch.randint(0, 3, (500,), generator=g)]
        cont = temporal.refined_count(count, v, 1.0, t_in, "continuous")
        assert float(cont.max()) < t_in and float(torch.floor(cont * t_out / t_in + 0.5).max()) <= t_out
        printed = temporal.refined_count(count, v, 1.0, t_in, "clip")
        assert float(printed.max()) > t_in  # the printed reading overshoots the input window
    with pytest.raises(SeennError, match="teas.expansion"):
        temporal.refined_count(count, v, 1.0, 2, "stretch")


def test_equal_windows_pass_the_train_unchanged():
    # V_fire = 3 > 2 V_th: Eq. 3 would give x~ = 1 + 1 - 1/3 -> round 2; the identity keeps 1 spike.
    s = train([0, 1, 0], [1, 1, 1])
    out = temporal.convert(s, torch.tensor([3.0, 1.0]), 1.0, 3)
    assert out is s


def test_mapping_clips_to_the_target_window():
    # T 2 -> 3: count 2, V 4: x~ = 2.75 -> 3/2 * 2.75 = 4.125 -> clipped to 3.
    out = temporal.convert(train([1, 1]), torch.tensor([4.0]), 1.0, 3, expansion="clip")
    assert torch.equal(out, train([1, 1, 1]))


def test_if_amplitude_and_threshold_are_kept():
    # IF spikes carry the threshold 0.5: count 1, V 0.75: x~ = 1 + 1 - .5/.75 = 4/3 -> 6/2 * 4/3 = 4.
    s = train([0.5, 0.0])
    out = temporal.convert(s, torch.tensor([0.75]), torch.tensor(0.5), 6, amplitude=torch.tensor(0.5), expansion="clip")
    assert torch.equal(out, train([0.5, 0.5, 0.5, 0.5, 0.0, 0.0]))


def test_straight_through_gradient_is_the_rate():
    s = train([1, 0], [0, 1]).requires_grad_(True)
    out = temporal.convert(s, torch.tensor([1.0, 1.0]), 1.0, 4)
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    (out * w).sum().backward()
    # d out[t'] / d s[t] = 1 / T_in = 1/2: each input step gets the sum of its neuron's weights / 2
    assert torch.allclose(s.grad, torch.tensor([[8.0, 10.0], [8.0, 10.0]]))


def test_naive_alignment_truncates_or_pads():
    s = train([1, 0, 1])
    assert torch.equal(temporal.naive(s, None, 1.0, 2), train([1, 0]))
    assert torch.equal(temporal.naive(s, None, 1.0, 5), train([1, 0, 1, 0, 0]))


def test_bad_inputs_are_named():
    with pytest.raises(SeennError, match="target window"):
        temporal.convert(train([1, 0]), torch.tensor([1.0]), 1.0, 0)
    with pytest.raises(SeennError, match="firing potentials"):
        temporal.convert(train([1, 0]), torch.tensor([1.0, 1.0]), 1.0, 4)
