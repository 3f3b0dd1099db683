"""The slot engine (methods/slots.py) against the post-hoc evaluation of saved logits, for every
exit rule, static and event inputs, and batch sizes from 1 to more than the input; and the
step compiled whole (`torch.compile(fullgraph=True)`: a graph break, a branch on the host,
fails), which is what a CUDA graph replays on a GPU."""

import pytest
import torch
from test_engine import T, posthoc_logits, spread_alpha, tiny

from seenn.methods import engine
from seenn.methods.exits import ExitAt, FixedT, Seenn1

N = 21


def rules(z):
    """One rule of each kind, set so that samples leave at several timesteps."""
    return {"fixed": FixedT(),
            "seenn1-confidence": Seenn1("confidence", spread_alpha(z, "confidence")),
            "seenn1-entropy": Seenn1("entropy", spread_alpha(z, "entropy")),
            "seenn2": ExitAt(torch.arange(len(z)) % T + 1)}


@pytest.fixture(scope="module", params=["static", "event"])
def case(request):
    torch.manual_seed(5)
    if request.param == "static":
        model, x = tiny(), torch.randn(N, 1, 12, 12) * 2
    else:
        model, x = tiny(event=True, in_ch=2), (torch.rand(N, T, 2, 12, 12) < 0.3).float() * 3
    with torch.no_grad():
        z = model(x, T).cumsum(0).transpose(0, 1).float() if request.param == "event" else posthoc_logits(model, x, T)
    return model, x, z


def assert_posthoc(res, rule, z):
    ref_t = rule.posthoc(z)
    at_exit = z[torch.arange(len(z)), ref_t - 1]
    assert torch.equal(res.exit_t, ref_t), rule
    assert torch.equal(res.prediction, at_exit.argmax(-1)), rule
    assert torch.allclose(res.logits, at_exit, rtol=1e-5, atol=1e-5), rule


@pytest.mark.parametrize("sync_every", [1, 2], ids=["exact chunk", "fixed chunk"])
@pytest.mark.parametrize("batch_size", [1, 3, 16, N + 5])
@pytest.mark.parametrize("kind", ["fixed", "seenn1-confidence", "seenn1-entropy", "seenn2"])
def test_every_rule_equals_posthoc_at_every_batch_size(case, kind, batch_size, sync_every):
    """sync_every 1 on a CPU: the host reads after each step and the stem runs on exactly the
    inputs that enter; 2: the static step, whose stem runs on a fixed chunk (what a GPU runs)."""
    model, x, z = case
    rule = rules(z)[kind]
    if kind != "fixed":
        assert len(set(rule.posthoc(z).tolist())) >= 2  # samples leave at different timesteps
    assert_posthoc(engine.run(model, x, T, rule, batch_size=batch_size, sync_every=sync_every), rule, z)


def test_the_stem_runs_once_per_sample(case, monkeypatch):
    """Direct encoding keeps its saving: with exact chunks the stem sees each input once, and
    the fixed chunk (static shapes) runs it on `refill` rows per step whatever enters."""
    model, x, z = case
    if getattr(model, "event", False):
        pytest.skip("event inputs run the stem on each frame")
    rows, stem = [], model.stem.forward
    monkeypatch.setattr(model.stem, "forward", lambda inp: rows.append(inp.shape[0]) or stem(inp))
    engine.run(model, x, T, FixedT(), batch_size=4, sync_every=1)
    assert sum(rows) == N and 0 not in rows
    rows.clear()
    engine.run(model, x, T, FixedT(), batch_size=4, sync_every=2)
    assert sum(rows) > N and set(rows) <= {4, 1}  # 1: once the busy slots moved into one


def test_a_new_rule_is_one_function_of_t_and_the_logits(case):
    """The README's recipe: any (t, T, z, input index) -> stop mask runs in the step."""
    model, x, z = case

    def margin_rule(t, T, z, idx):  # stop once the top two logits are 3 apart
        top = z.topk(2, dim=-1).values
        return (top[:, 0] - top[:, 1]) > 3.0

    res = engine.run(model, x, T, margin_rule, batch_size=4)
    top = z.topk(2, dim=-1).values
    above = (top[..., 0] - top[..., 1]) > 3.0
    above[:, -1] = True
    assert torch.equal(res.exit_t, above.double().argmax(1) + 1)


def test_the_compiled_step_has_no_graph_break_and_equals_eager(case):
    """fullgraph=True raises on a graph break; the compiled step gives the eager results (the
    same exits and predictions, logits to float rounding) and is reused on a second call."""
    model, x, z = case
    for kind in ("seenn1-confidence", "seenn2"):
        rule = rules(z)[kind]
        compiled = engine.Engine(model, T, rule, 4, compile_step=True, sync_every=2)
        first, again = compiled(x), compiled(x)
        assert_posthoc(first, rule, z)
        assert torch.equal(again.exit_t, first.exit_t) and torch.equal(again.logits, first.logits)
        assert 4 in compiled._compiled and set(compiled._compiled) <= {4, 1}  # one per number of slots, reused
