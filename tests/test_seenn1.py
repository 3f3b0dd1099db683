import pandas as pd
import pytest
import torch

from seenn.methods.seenn1 import alpha_grid, calibrate, select_alpha

CFG = {"scores": ["confidence", "entropy"], "alpha_min": 0.5, "alpha_max": 0.999999, "alpha_steps": 50,
       "temperature": 1.0, "entropy_temperature": False, "accumulate": "sum", "tolerance_points": 0.1}


def test_select_alpha_fewest_timesteps_within_tolerance():
    df = pd.DataFrame({"alpha": [0.5, 0.7, 0.9, 0.99], "accuracy": [90.0, 95.0, 96.0, 96.0],
                       "avg_timesteps": [1.0, 1.2, 1.5, 2.0]})
    assert select_alpha(df, full_t_accuracy=96.0, tolerance_points=0.1) == 2
    assert select_alpha(df, full_t_accuracy=96.0, tolerance_points=1.0) == 1
    # nothing qualifies: most accurate (largest alpha on ties)
    assert select_alpha(df, full_t_accuracy=99.0, tolerance_points=0.0) == 3


def test_alpha_grid_is_increasing_and_dense_near_one():
    g = alpha_grid(0.5, 0.999999, 20)
    assert g[0] == pytest.approx(0.5) and g[-1] == pytest.approx(0.999999)
    assert torch.all(g[1:] > g[:-1])
    assert (g > 0.99).sum() > (g < 0.9).sum()


def test_calibration_exits_confident_samples_early():
    # 40 samples, T = 3, 2 classes. Half are confidently right at t=1; half are ambiguous until t=3.
    n = 40
    easy = torch.tensor([[8.0, 0.0], [16.0, 0.0], [24.0, 0.0]])
    hard = torch.tensor([[0.1, 0.0], [0.0, 0.2], [0.0, 6.0]])
    z = torch.stack([easy] * (n // 2) + [hard] * (n // 2))
    y = torch.tensor([0] * (n // 2) + [1] * (n // 2))
    table, result = calibrate(z, y, z, y, CFG)
    r = result["scores"]["confidence"]
    assert r["test_accuracy"] == pytest.approx(100.0)
    assert r["test_avg_timesteps"] == pytest.approx((1 * 20 + 3 * 20) / 40)
    assert r["test_exit_histogram"] == [20, 0, 20]
    assert set(table["split"]) == {"val", "test"} and set(table["score"]) == {"confidence", "entropy"}


def test_branch_override_replaces_only_its_seenn1_key():
    from seenn.methods.seenn1 import seenn1_config

    base = {"temperature": 1.0, "accumulate": "sum", "alpha_min": 0.5}
    assert seenn1_config({"seenn1": base}) == base
    got = seenn1_config({"seenn1": base, "conversion": {"seenn1_temperature": 8.0}})
    assert got == {**base, "temperature": 8.0} and base["temperature"] == 1.0


def test_calibration_uses_the_temperature_for_the_entropy_score_only_if_asked():
    """Temperature 8 with seenn1.entropy_temperature off: the entropy rows and choice are those of
    temperature 1 (the authors' raw-logit entropy); on: they change, and the confidence rows do
    not depend on the flag."""
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(60, 4, 3, generator=g) * 3).cumsum(1)
    y = torch.randint(0, 3, (60,), generator=g)
    runs = {(t, f): calibrate(z, y, z, y, {**CFG, "temperature": t, "entropy_temperature": f}) for t, f in
            [(1.0, False), (8.0, False), (8.0, True)]}
    ent = {k: tab[tab["score"] == "entropy"].reset_index(drop=True) for k, (tab, _) in runs.items()}
    conf = {k: tab[tab["score"] == "confidence"].reset_index(drop=True) for k, (tab, _) in runs.items()}
    pd.testing.assert_frame_equal(ent[(8.0, False)], ent[(1.0, False)])
    assert runs[(8.0, False)][1]["scores"]["entropy"] == runs[(1.0, False)][1]["scores"]["entropy"]
    assert not ent[(8.0, True)].equals(ent[(8.0, False)])
    pd.testing.assert_frame_equal(conf[(8.0, True)], conf[(8.0, False)])


def test_branch_temperature_override_keeps_the_entropy_temperature_flag():
    from seenn.methods.seenn1 import seenn1_config

    got = seenn1_config({"seenn1": CFG, "conversion": {"seenn1_temperature": 8.0}})
    assert got == {**CFG, "temperature": 8.0} and got["entropy_temperature"] is False


def test_seenn1_at_another_methods_budget_is_chosen_on_validation():
    """SEENN-I beside SEENN-II: alpha interpolated where the validation sweep's average timesteps
    equal the target; the test split only reports that alpha."""
    import numpy as np

    from seenn.methods.seenn1 import alpha_grid, at_budget, sweep

    g = torch.Generator().manual_seed(3)
    zv, zt = (torch.randn(300, 4, 5, generator=g).cumsum(1) * 2 for _ in range(2))
    yv, yt = (torch.randint(0, 5, (300,), generator=g) for _ in range(2))
    cfg = {"scores": ["confidence"], "alpha_min": 0.2, "alpha_max": 0.9999, "alpha_steps": 60, "temperature": 1.0,
           "accumulate": "sum", "entropy_temperature": False}
    sv = sweep(zv, yv, "confidence", alpha_grid(0.2, 0.9999, 60), 1.0, "sum")
    target = float(sv["avg_timesteps"].iloc[30])
    p = at_budget(zv, yv, zt, yt, cfg, target)["confidence"]
    assert p["val_avg_timesteps"] == pytest.approx(target)  # a point of the sweep is met exactly
    flat = sv[sv["avg_timesteps"] == target]["alpha"]
    assert flat.min() <= p["alpha"] <= flat.max()
    st = sweep(zt, yt, "confidence", torch.tensor([p["alpha"]], dtype=torch.float64), 1.0, "sum")
    assert (p["test_accuracy"], p["test_avg_timesteps"]) == (st["accuracy"][0], st["avg_timesteps"][0])
    # between two sweep points: an alpha between theirs, and a validation cost between theirs
    lo, hi = (float(v) for v in np.unique(sv["avg_timesteps"])[[10, 11]])
    q = at_budget(zv, yv, zt, yt, cfg, (lo + hi) / 2)["confidence"]
    assert sv[sv["avg_timesteps"] == lo]["alpha"].min() <= q["alpha"] <= sv[sv["avg_timesteps"] == hi]["alpha"].max()
    assert lo <= q["val_avg_timesteps"] <= hi
