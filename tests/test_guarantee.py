"""The guarantee comparison (methods/guarantee.py) on synthetic logits: every rule reported,
Learn-then-Test's promise kept where the tolerance rule's is not, and a stage that reruns alone
when only epsilon changes."""

import pytest
import torch
from test_certify import population

from seenn.methods.guarantee import compare

CFG = {"scores": ["confidence", "entropy"], "alpha_min": 0.1, "alpha_max": 0.999999, "alpha_steps": 60,
       "temperature": 1.0, "accumulate": "sum", "entropy_temperature": False, "tolerance_points": 0.1,
       "epsilon": 0.05, "delta": 0.1, "p_value": "binomial", "redraws": 30}
CONF = {"alpha": 0.1, "max_set_size": 1, "score": "one_minus_p", "checkpoints": None}


@pytest.fixture(scope="module")
def logits():
    z = population(n=3000, seed=7)
    y = z[:, -1].argmax(-1)
    g = torch.Generator().manual_seed(8)
    flip = torch.rand(len(y), generator=g) < 0.1
    y = torch.where(flip, torch.randint(0, z.shape[-1], (len(y),), generator=g), y)
    return z[:1000], y[:1000], z[1000:], y[1000:]


def test_every_rule_is_reported_and_the_certified_alpha_keeps_its_promise_on_test(logits):
    zv, yv, zt, yt = logits
    result, rows = compare(zv, yv, zt, yt, CFG, CONF, seed=1)
    for score in CFG["scores"]:
        r = result["scores"][score]
        assert r["ltt"]["certified"] and r["ltt"]["val_risk"] <= CFG["epsilon"]
        assert r["ltt"]["test_risk"] <= CFG["epsilon"] + 0.02  # test noise on 2,000 samples
        assert r["ltt"]["test_avg_timesteps"] < 4
        assert r["tolerance"]["alpha"] > 0
    assert result["conformal"]["checkpoints"] == [1, 2, 3, 4]
    assert result["conformal"]["test"]["coverage"] >= 1 - CONF["alpha"] - 0.03
    assert set(rows["rule"]) == {"tolerance", "ltt", "conformal"}
    assert len(rows) == CFG["redraws"] * (2 * len(CFG["scores"]) + 1)
    broken = {(s["rule"], s["score"]): s["broken_share"] for s in result["redraws"]}
    assert broken[("ltt", "confidence")] <= CFG["delta"] + 0.2  # 30 redraws; held-out noise inflates it
    again, rows_again = compare(zv, yv, zt, yt, CFG, CONF, seed=1)
    assert again == result and rows_again.equals(rows)  # deterministic


def test_a_looser_epsilon_certifies_a_looser_alpha(logits):
    """The curve behind the figure against epsilon: the configured epsilon among the grid's, and
    the certified alpha never stricter (never higher, so the average timesteps never more) as epsilon grows;
    the configured epsilon's point is the rule's own result."""
    zv, yv, zt, yt = logits
    result, _ = compare(zv, yv, zt, yt, {**CFG, "epsilon": 0.04, "redraws": 1}, CONF, seed=1)
    for score in CFG["scores"]:
        curve = result["scores"][score]["epsilon_curve"]
        eps = [p["epsilon"] for p in curve]
        assert eps == sorted(eps) and 0.04 in eps and len(eps) >= 6
        alphas = [p["alpha"] if p["alpha"] is not None else 1.0 for p in curve]  # none certified: full T
        assert alphas == sorted(alphas, reverse=True) and alphas[-1] < alphas[0]  # a lower threshold exits sooner
        steps = [p["test_avg_timesteps"] for p in curve]
        assert steps == sorted(steps, reverse=True)
        own = next(p for p in curve if p["epsilon"] == 0.04)
        assert own["test_avg_timesteps"] == result["scores"][score]["ltt"]["test_avg_timesteps"]


def test_nothing_certified_falls_back_to_full_t(logits):
    zv, yv, zt, yt = logits
    result, _ = compare(zv, yv, zt, yt, {**CFG, "epsilon": 1e-6, "redraws": 2}, CONF, seed=1)
    r = result["scores"]["confidence"]["ltt"]
    assert not r["certified"] and r["alpha"] is None
    assert r["test_avg_timesteps"] == 4.0 and r["test_risk"] == 0.0 and r["test_error_increase_points"] == 0.0


def test_the_authors_protocol_voids_every_guarantee(tmp_path):
    """data.protocol: authors selects on the test split: the stage certifies nothing and says why."""
    from seenn.common.io import read_json
    from seenn.stages.declaration import StageContext
    from seenn.stages.guarantee import stage_guarantee

    ctx = StageContext("guarantee_direct", {"data": {"protocol": "authors"}}, {},
                       {"result": str(tmp_path / "g.json"), "redraws": str(tmp_path / "r.csv")},
                       torch.device("cpu"), tmp_path)
    stage_guarantee(ctx)
    out = read_json(tmp_path / "g.json")
    assert set(out) == {"void"} and "authors" in out["void"] and "test split" in out["void"]
