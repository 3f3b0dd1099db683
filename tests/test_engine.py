"""The early-exit engine gives exactly the post-hoc results (same predictions, same exit
timesteps) while it really drops finished samples from the batch."""

import pytest
import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.methods import engine
from seenn.methods.exits import RULES, exit_scores, policy_exit, seenn1_exit, seenn1_stops
from seenn.models import build_snn

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
T = 4


def tiny(event=False, in_ch=1, classes=5):
    """A small untrained spiking ResNet whose neurons fire (BatchNorm scaled up) so that outputs
    differ between samples and timesteps."""
    torch.manual_seed(0)
    m = build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}, NEURON, in_ch, classes,
                  event=event)
    with torch.no_grad():
        for bn in (mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)):
            bn.weight.uniform_(1.0, 3.0)
            bn.bias.uniform_(-0.5, 1.0)
        m.fc.weight.mul_(4)
    return m.eval()


def posthoc_logits(model, x, T):
    """What the evaluate stage saves: accumulated logits [N, T, K] from the multi-step path."""
    with torch.no_grad():
        return model(x, T).cumsum(0).transpose(0, 1).float()


@pytest.fixture(scope="module")
def setup():
    model = tiny()
    torch.manual_seed(1)
    x = torch.randn(37, 1, 12, 12) * 2
    return model, x, posthoc_logits(model, x, T)


def spread_alpha(z, score, temperature=1.0, accumulate="sum", at=2, entropy_temperature=False):
    """A threshold that makes samples exit at several different timesteps, halfway between two
    scores at timestep `at` (a threshold equal to a score would make the decision hang on float
    rounding)."""
    s = exit_scores(z, score, temperature, accumulate, entropy_temperature)[:, at - 1].sort().values
    mid = len(s) // 2
    return float((s[mid - 1] + s[mid]) / 2)


@pytest.mark.parametrize("score,temperature,accumulate", [("confidence", 1.0, "sum"), ("entropy", 1.0, "sum"),
                                                          ("confidence", 2.0, "mean")])
@pytest.mark.parametrize("batch_size", [37, 8, 1])
def test_seenn1_engine_equals_posthoc_evaluation(setup, score, temperature, accumulate, batch_size):
    model, x, z = setup
    alpha = spread_alpha(z, score, temperature, accumulate)
    ref_t = seenn1_exit(exit_scores(z, score, temperature, accumulate), alpha)
    ref_pred = z[torch.arange(len(z)), ref_t - 1].argmax(-1)
    assert len(set(ref_t.tolist())) >= 3  # not a trivial case: exits at several timesteps
    res = engine.run_batches(lambda xb: engine.run_seenn1(model, xb, T, alpha, score, temperature, accumulate), x, batch_size)
    assert torch.equal(res.exit_t, ref_t)
    assert torch.equal(res.prediction, ref_pred)
    # logits agree to float rounding only: BLAS picks kernels by batch size, and the engine's
    # slots shrink at the end; the decisions made from them are identical
    assert torch.allclose(res.logits, z[torch.arange(len(z)), ref_t - 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("entropy_temperature", [False, True])
@pytest.mark.parametrize("batch_size", [37, 5])
def test_seenn1_engine_entropy_temperature_matches_posthoc(setup, entropy_temperature, batch_size):
    """Temperature 8 on the entropy score or not (seenn1.entropy_temperature): the engine's
    stepwise rule exits where the post-hoc rule on the saved logits does, in both settings, and
    the setting reaches the engine (the other setting exits elsewhere at the same alpha)."""
    model, x, z = setup
    alpha = spread_alpha(z, "entropy", 8.0, entropy_temperature=entropy_temperature)
    ref_t = seenn1_exit(exit_scores(z, "entropy", 8.0, "sum", entropy_temperature), alpha)
    assert len(set(ref_t.tolist())) >= 2  # samples exit at different timesteps
    res = engine.run_seenn1(model, x, T, alpha, "entropy", 8.0, "sum", entropy_temperature, batch_size=batch_size)
    assert torch.equal(res.exit_t, ref_t)
    assert torch.equal(res.prediction, z[torch.arange(len(z)), ref_t - 1].argmax(-1))
    other = engine.run_seenn1(model, x, T, alpha, "entropy", 8.0, "sum", not entropy_temperature, batch_size=batch_size)
    assert not torch.equal(other.exit_t, ref_t)


@pytest.mark.parametrize("score,temperature,accumulate", [("confidence", 1.0, "sum"), ("confidence", 2.0, "mean")])
@pytest.mark.parametrize("batch_size", [8, 5, 1])
def test_continuous_batching_equals_posthoc_evaluation(setup, score, temperature, accumulate, batch_size):
    """Refilling the batch mixes samples at different timesteps in one call: same exits and
    predictions as the saved logits, logits to float rounding."""
    model, x, z = setup
    alpha = spread_alpha(z, score, temperature, accumulate)
    ref_t = seenn1_exit(exit_scores(z, score, temperature, accumulate), alpha)
    res = engine.run_seenn1(model, x, T, alpha, score, temperature, accumulate, batch_size=batch_size)
    assert torch.equal(res.exit_t, ref_t)
    assert torch.equal(res.prediction, z[torch.arange(len(z)), ref_t - 1].argmax(-1))
    assert torch.allclose(res.logits, z[torch.arange(len(z)), ref_t - 1], rtol=1e-5, atol=1e-5)


def test_slots_keep_their_shape_while_the_input_lasts(setup):
    """Every network call computes a fixed number of slots: the full batch while inputs are left,
    then fewer (`engine.shrunk`) once it has run out; the rows computed beyond the timesteps the
    samples need are bounded by the empty slots of the last steps."""
    model, x, z = setup
    alpha = spread_alpha(z, "confidence")
    seen = []
    handle = model.layers[0].conv1.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    try:
        res = engine.run_seenn1(model, x, T, alpha, "confidence", batch_size=8, sync_every=1)
    finally:
        handle.remove()
    full = 0
    while full < len(seen) and seen[full] == 8:
        full += 1
    assert full >= -(-res.sample_steps // 8) - T  # full batches until the last inputs are in
    assert set(seen[full:]) <= {2, 1} and seen[full:] == sorted(seen[full:], reverse=True)
    assert sum(seen) - res.sample_steps <= 8 * 2 + (T - 1) * 2  # waste: the last partly empty steps only


def test_shrunk_divides_by_four_while_the_busy_slots_fit():
    assert engine.shrunk(256, 200) == 256
    assert engine.shrunk(256, 64) == 64
    assert engine.shrunk(256, 3) == 4
    assert engine.shrunk(256, 0) == 1
    assert engine.shrunk(37, 9) == 10  # ceil(37 / 4)
    assert engine.shrunk(1, 1) == 1


@pytest.mark.parametrize("sync_every", [1, 3, 8])
def test_the_host_reads_the_device_once_every_sync_every_steps(setup, sync_every, monkeypatch):
    """The step itself never waits on the host: the only read is `SlotState.progress`, once per
    `sync_every` steps, and results do not depend on how often it happens."""
    from seenn.methods import slots

    model, x, z = setup
    alpha = spread_alpha(z, "confidence")
    reads, calls = [], []
    progress, step = slots.SlotState.progress, slots.SlotStep.__call__
    monkeypatch.setattr(slots.SlotState, "progress", lambda st: reads.append(1) or progress(st))
    monkeypatch.setattr(slots.SlotStep, "__call__", lambda self, *a, **k: calls.append(1) or step(self, *a, **k))
    res = engine.run_seenn1(model, x, T, alpha, "confidence", batch_size=8, sync_every=sync_every)
    assert 1 <= len(reads) <= len(calls) // sync_every
    ref_t = seenn1_exit(exit_scores(z, "confidence"), alpha)
    assert torch.equal(res.exit_t, ref_t)


@pytest.mark.parametrize("fused", [False, True])
def test_continuous_batching_with_event_inputs_and_fused_neurons(fused):
    """Event inputs: each sample reads its own frame t in a mixed batch; fused LIF kernels give
    the same exits as the saved logits of the plain multi-step path."""
    from seenn.snn.kernels import set_fused

    model = tiny(event=True, in_ch=2)
    torch.manual_seed(2)
    x = (torch.rand(23, T, 2, 12, 12) < 0.3).float() * 3
    with torch.no_grad():
        z = model(x, T).cumsum(0).transpose(0, 1).float()
    alpha = spread_alpha(z, "confidence")
    ref_t = seenn1_exit(exit_scores(z, "confidence"), alpha)
    set_fused(model, fused)
    try:
        res = engine.run_seenn1(model, x, T, alpha, "confidence", batch_size=6)
    finally:
        set_fused(model, False)
    assert torch.equal(res.exit_t, ref_t)
    assert torch.equal(res.prediction, z[torch.arange(len(z)), ref_t - 1].argmax(-1))


def test_continuous_batching_with_if_neurons():
    """IF neurons (converted SNNs) start admitted samples at lam/2, as the multi-step path does."""
    from seenn.models import build_if_snn

    torch.manual_seed(4)
    model = build_if_snn({"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}, 1, 5).eval()
    with torch.no_grad():
        for bn in (mod for mod in model.modules() if isinstance(mod, nn.BatchNorm2d)):
            bn.weight.uniform_(1.0, 3.0)
            bn.bias.uniform_(-0.5, 1.0)
        model.fc.weight.mul_(4)
    x = torch.randn(29, 1, 12, 12) * 2
    z = posthoc_logits(model, x, 8)
    alpha = spread_alpha(z, "confidence", at=4)
    ref_t = seenn1_exit(exit_scores(z, "confidence"), alpha)
    assert len(set(ref_t.tolist())) >= 5
    res = engine.run_seenn1(model, x, 8, alpha, "confidence", batch_size=7)
    assert torch.equal(res.exit_t, ref_t)
    assert torch.equal(res.prediction, z[torch.arange(len(z)), ref_t - 1].argmax(-1))


def test_the_op_counter_needs_lockstep_and_the_eager_step(setup):
    from seenn.methods.energy import OpCounter

    model, x, _ = setup
    with OpCounter(model) as counter:
        with pytest.raises(SeennError, match="batch_size=None"):
            engine.run_fixed(model, x, T, counter=counter, batch_size=8)
        with pytest.raises(SeennError, match="eager step"):
            engine.run_fixed(model, x, T, counter=counter, compile_step=True)


def test_policy_engine_equals_posthoc_with_a_stand_in_policy(setup):
    model, x, z = setup
    u_all = torch.tensor([1 + (i * 7) % T for i in range(len(x))])
    # stand-in policy: a fixed per-sample u, looked up from the input (decided before the SNN runs)
    keys = {float(xi.sum()): int(u) for xi, u in zip(x, u_all)}
    policy = engine.Policy(decide=lambda xb: torch.tensor([keys[float(xi.sum())] for xi in xb]))
    for res in (engine.run_batches(lambda xb: engine.run_policy(model, xb, T, policy), x, 10),
                engine.run_policy(model, x, T, policy, batch_size=10)):
        assert torch.equal(res.exit_t, u_all)
        assert torch.equal(res.prediction, z[torch.arange(len(z)), u_all - 1].argmax(-1))


def test_policy_network_decides_by_argmax():
    net = nn.Sequential(nn.Flatten(), nn.Linear(144, T))
    x = torch.randn(6, 1, 12, 12)
    policy = engine.Policy.from_network(net)
    assert torch.equal(engine.policy_exits(policy, x, T), policy_exit(net(x)))
    assert policy.model is net


def test_policy_outside_1_to_T_is_rejected(setup):
    model, x, _ = setup
    bad = engine.Policy(decide=lambda xb: torch.full((xb.shape[0],), T + 1))
    with pytest.raises(SeennError, match="outside 1..4"):
        engine.run_policy(model, x, T, bad)


def test_fixed_T_runs_every_sample_to_T(setup):
    model, x, z = setup
    for t in (1, T):
        for batch_size in (None, 8):
            res = engine.run_fixed(model, x, t, batch_size=batch_size)
            assert res.exit_t.tolist() == [t] * len(x)
            assert torch.equal(res.prediction, z[:, t - 1].argmax(-1))


def test_finished_samples_leave_their_slots(setup):
    """Lockstep (one slot per sample): samples that stop leave their slots empty, and once few are
    busy they move into fewer slots, so late timesteps compute far fewer rows than the first."""
    model, x, z = setup
    alpha = spread_alpha(z, "confidence")
    seen = []
    handle = model.layers[0].conv1.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    try:
        res = engine.run_seenn1(model, x, T, alpha, "confidence", sync_every=1)
    finally:
        handle.remove()
    still_running = [int((res.exit_t >= t).sum()) for t in range(1, T + 1)]
    assert seen[0] == len(x)
    assert all(busy <= rows for busy, rows in zip(still_running, seen))
    assert seen[-1] < seen[0]


def test_stepwise_state_is_cleared_after_a_run(setup):
    model, x, z = setup
    engine.run_fixed(model, x, 2)
    from seenn.snn.neurons import neuron_modules

    assert all(m.u is None and not m.stepwise and m.fresh is None for m in neuron_modules(model))
    assert torch.equal(posthoc_logits(model, x, T), z)  # the multi-step path is unaffected


def test_event_inputs_feed_one_frame_per_timestep():
    model = tiny(event=True, in_ch=2)
    torch.manual_seed(2)
    x = (torch.rand(9, T, 2, 12, 12) < 0.3).float() * 3
    with torch.no_grad():
        z = model(x, T).cumsum(0).transpose(0, 1).float()
    res = engine.run_fixed(model, x, T)
    assert torch.equal(res.prediction, z[:, -1].argmax(-1))
    assert torch.allclose(res.logits, z[:, -1], rtol=1e-5, atol=1e-5)
    alpha = spread_alpha(z, "confidence")
    ref_t = seenn1_exit(exit_scores(z, "confidence"), alpha)
    assert torch.equal(engine.run_seenn1(model, x, T, alpha, "confidence").exit_t, ref_t)


def test_stepwise_stop_rule_agrees_with_the_vectorized_rule():
    torch.manual_seed(3)
    s = torch.rand(50, T)
    first = torch.full((50,), 0)
    for t in range(1, T + 1):
        stop = seenn1_stops(s[:, t - 1], 0.7, t, T)
        first = torch.where((first == 0) & stop, torch.full_like(first, t), first)
    assert torch.equal(first, seenn1_exit(s, 0.7))


def _rule_instances(z):
    """One instance of every registered exit rule (exits.RULES), set so that samples leave at
    several timesteps; a new rule without a case here fails the test below."""
    from seenn.methods.exits import ExitAt, FixedT, Seenn1

    cases = {"fixed": [FixedT()],
             "seenn1": [Seenn1("confidence", spread_alpha(z, "confidence")),
                        Seenn1("entropy", spread_alpha(z, "entropy", 8.0, entropy_temperature=True), 8.0, "sum", True),
                        Seenn1("confidence", spread_alpha(z, "confidence", 2.0, "mean"), 2.0, "mean")],
             "policy": [ExitAt(torch.arange(len(z)) % T + 1)]}
    return cases


@pytest.mark.parametrize("kind", sorted(RULES))
@pytest.mark.parametrize("batch_size", [37, 5])
def test_every_exit_rule_gives_the_same_exits_stepwise_and_posthoc(setup, kind, batch_size):
    """An exit rule's two forms agree: the engine, stopping samples with `rule.stops` one
    timestep at a time, exits each sample where `rule.posthoc` says from the saved logits."""
    model, x, z = setup
    cases = _rule_instances(z)
    assert kind in cases, f"exit rule '{kind}' has no test case in _rule_instances"
    for rule in cases[kind]:
        ref_t = rule.posthoc(z)
        res = engine.run(model, x, T, rule, batch_size=batch_size)
        assert torch.equal(res.exit_t, ref_t), rule
        assert torch.equal(res.prediction, z[torch.arange(len(z)), ref_t - 1].argmax(-1)), rule
