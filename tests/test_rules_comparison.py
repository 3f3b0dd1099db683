"""Every published exit rule on one footing (report/rules.py): the comparison table built from the
files the stages write (here from synthetic logits through the stages' own functions), rules that
coincide shown once, the Pareto front and its sentence worked by hand, and the figure."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from test_certify import population

from seenn.methods.guarantee import compare
from seenn.methods.seenn1 import calibrate, settings
from seenn.report.rules import front_sentence, front_shares, fronts, pareto_front, rules_figure, rules_table, sweep_points
from seenn.stages.evaluate import summarize

CFG = {"scores": ["confidence", "entropy", "topk_gap", "dynamic_confidence"], "alpha_min": 0.1, "alpha_max": 0.999999,
       "alpha_steps": 40, "temperature": 1.0, "accumulate": "sum", "entropy_temperature": False, "tolerance_points": 0.5,
       "epsilon": 0.05, "delta": 0.1, "p_value": "binomial", "redraws": 4}
CONF = {"alpha": 0.1, "max_set_size": 1, "score": "one_minus_p", "checkpoints": None}


def synthetic_logits():
    """(val logits, labels, test logits, labels) of a synthetic SNN whose labels are 15 % noisy."""
    z = population(n=1200, seed=3)
    y = z[:, -1].argmax(-1)
    flip = torch.rand(len(y), generator=torch.Generator().manual_seed(4)) < 0.15
    y = torch.where(flip, (y + 1) % z.shape[-1], y)
    return z[:600], y[:600], z[600:], y[600:]


def write_run(tmp, cfg: dict = CFG, branch: str = "direct") -> dict:
    """One SNN's result files as the evaluate, seenn1 and guarantee stages write them, from
    synthetic accumulated logits; returns the input roles the tables stage would declare."""
    zv, yv, zt, yt = synthetic_logits()
    table, result = calibrate(zv, yv, zt, yt, cfg)
    result["settings"] = settings(cfg)
    g, _ = compare(zv, yv, zt, yt, cfg, CONF, seed=1)
    files = {f"metrics_{branch}": {"test": summarize(zt, yt), "val": summarize(zv, yv)}, f"seenn1_{branch}": result,
             f"guarantee_{branch}": g}
    inputs = {}
    for role, content in files.items():
        inputs[role] = str(tmp / f"{role}.json")
        (tmp / f"{role}.json").write_text(json.dumps(content))
    inputs[f"sweep_{branch}"] = str(tmp / f"sweep_{branch}.csv")
    table.to_csv(inputs[f"sweep_{branch}"], index=False)
    return inputs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("rules"))


def test_every_published_rule_has_a_row_at_its_chosen_threshold(run):
    df = rules_table(run)
    s1 = json.loads(open(run["seenn1_direct"]).read())
    g = json.loads(open(run["guarantee_direct"]).read())
    by = df.set_index("rule")
    for score, label in (("confidence", "SEENN-I (confidence)"), ("entropy", "SEENN-I (entropy) = DT-SNN"),
                         ("topk_gap", "SNNCutoff (Top-K gap)"), ("dynamic_confidence", "Dynamic Confidence")):
        assert by.at[label, "test_accuracy"] == s1["scores"][score]["test_accuracy"]
        assert by.at[label, "avg_timesteps"] == s1["scores"][score]["test_avg_timesteps"]
        assert by.at[label, "calibration"] == "tolerance rule"
        certified = label.replace(" (", " certified (", 1) if "(" in label else f"{label} certified"
        assert by.at[certified, "avg_timesteps"] == g["scores"][score]["ltt"]["test_avg_timesteps"]
    assert by.at["SpikeCP (1 - p)", "avg_timesteps"] == g["conformal"]["test"]["avg_timesteps"]
    m = json.loads(open(run["metrics_direct"]).read())["test"]
    oracle = df[df["rule"].str.startswith("Oracle")].iloc[0]
    assert oracle["avg_timesteps"] == m["empirical_aet"]  # the empirical AET (Eq. 13) is the oracle's cost
    assert by.at["Fixed T=4", "vs_full_t"] == 0
    assert df["same_as"].isna().all()  # temperature 1: Dynamic Confidence (divisor 30) is a rule of its own


def test_dynamic_confidence_at_temperature_30_is_the_confidence_row(tmp_path):
    """With seenn1.temperature 30 on summed logits, the two scores are one rule: one row, named both."""
    inputs = write_run(tmp_path, {**CFG, "temperature": 30.0})
    df = rules_table(inputs)
    assert not df["rule"].str.startswith("Dynamic Confidence").any()
    assert set(df.loc[df["rule"].str.contains(r"SEENN-I (?:certified )?\(confidence\)"), "same_as"]) == {"Dynamic Confidence"}
    assert "Dynamic Confidence" not in set(sweep_points(inputs, "direct")["rule"])


def test_the_pareto_front_by_hand():
    pts = pd.DataFrame({"rule": ["a", "a", "b", "b", "Fixed T", "Fixed T", "c"],
                        "avg_timesteps": [1.0, 1.5, 1.2, 2.0, 1.0, 4.0, 1.5],
                        "accuracy": [90.0, 92.0, 93.0, 95.0, 90.0, 95.0, 92.0]})
    f = pareto_front(pts)
    # (1.0, 90) tie: the first rule keeps it; (1.5, 92) is beaten by b at 1.2; (4.0, 95) by b at 2.0
    assert list(zip(f["rule"], f["avg_timesteps"], f["accuracy"])) == [("a", 1.0, 90.0), ("b", 1.2, 93.0), ("b", 2.0, 95.0)]


def test_the_front_sentence_names_who_holds_it_where():
    """Shares along log timesteps: a holds 1 -> 1.2 and 3 -> (end), b holds 1.2 -> 3 (log 3 - log 1.2 of log 3)."""
    front = pd.DataFrame({"model": "Fine-tuned SNN", "rule": ["a", "b", "b", "a"], "avg_timesteps": [1.0, 1.2, 2.0, 3.0],
                          "accuracy": [90.0, 93.0, 95.9, 96.0]})
    b = (math.log(3) - math.log(1.2)) / math.log(3)
    assert front_shares(front) == pytest.approx({"b": b, "a": 1 - b})
    s = front_sentence(front, "Fine-tuned SNN")
    assert s == ("On the fine-tuned SNN (test split, every rule's threshold sweep), the Pareto front of accuracy against "
                 f"average timesteps (1.00-3.00 timesteps) is held by b {100 * b:.0f} %, a {100 * (1 - b):.0f} % of its "
                 "length on a log axis; the first point within 0.1 points of its best accuracy is b's, 95.90 % at 2.00 "
                 "timesteps.")
    assert "held by b alone" in front_sentence(front.assign(rule="b"), "Fine-tuned SNN")
    assert front_sentence(front, "QCFS-converted SNN") is None


def test_the_fronts_table_and_the_figure_come_from_the_run(run):
    f = fronts(run)
    assert set(f["model"]) == {"Direct-trained SNN"} and f["avg_timesteps"].is_monotonic_increasing
    assert f["accuracy"].is_monotonic_increasing
    fig = rules_figure(run)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"Pareto front", "oracle", "Fixed T", "SNNCutoff (Top-K gap)", "SpikeCP (1 - p)"} <= set(labels)
