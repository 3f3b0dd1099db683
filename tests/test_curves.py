"""The research curves `dvc plots show` draws: point files from the tables stage and dvc.yaml's
top-level plots declared beside that stage (so the dvc.yaml drift test covers them)."""

import pandas as pd
import pytest
import yaml

from seenn.pipeline.table import BY_NAME, build_stages, dvc_yaml
from seenn.report.curves import fixed_t_curve, seenn1_curve


def test_fixed_t_curve_is_one_point_per_timestep():
    df = fixed_t_curve({"test": {"accuracy_per_t": [80.0, 90.0, 95.0]}})
    assert df.to_dict("list") == {"avg_timesteps": [1.0, 2.0, 3.0], "accuracy": [80.0, 90.0, 95.0]}


def test_seenn1_curve_keeps_the_test_rows_of_one_score_in_alpha_order():
    sweep = pd.DataFrame({"split": ["val", "test", "test", "test"], "score": ["confidence", "confidence", "entropy",
                                                                              "confidence"],
                          "alpha": [0.5, 0.9, 0.5, 0.5], "accuracy": [1.0, 2.0, 3.0, 4.0],
                          "avg_timesteps": [1.0, 1.5, 1.2, 1.1]})
    df = seenn1_curve(sweep, "confidence")
    assert df.to_dict("list") == {"alpha": [0.5, 0.9], "avg_timesteps": [1.1, 1.5], "accuracy": [4.0, 2.0]}
    with pytest.raises(ValueError, match="no test rows for score 'margin'"):
        seenn1_curve(sweep, "margin")


def test_each_plot_reads_files_the_tables_stage_writes_or_reads():
    tables = BY_NAME["tables"]
    files = set(tables.outputs.values()) | set(tables.inputs.values())
    assert set(tables.dvc_plots) == {"tradeoff_direct", "tradeoff_finetuned", "tradeoff_converted"}
    for plot in tables.dvc_plots.values():
        assert set(plot["x"]) == set(plot["y"]) and set(plot["x"]) <= files
    # SEENN-II over beta straight from its stage's sweep, SEENN-I over alpha per score, fixed T
    assert {"results/seenn2/sweep.csv", "results/tables/curves/finetuned_fixed_t.csv",
            "results/tables/curves/finetuned_seenn1_entropy.csv"} <= set(tables.dvc_plots["tradeoff_finetuned"]["y"])


def test_dvc_yaml_declares_the_plots_and_follows_the_config():
    doc = yaml.safe_load(dvc_yaml())
    assert [next(iter(p)) for p in doc["plots"]] == ["tradeoff_direct", "tradeoff_finetuned", "tradeoff_converted"]
    cfg = {"seed": 1, "seeds": [], "conversion": {"enabled": False}, "report": {"paper_row": None},
           "data": {"name": "digits", "split_list": None}, "teas": {"enabled": False},
           "seenn1": {"scores": ["confidence"]}, "shift": {"enabled": False, "noise_std": [0.1]},
           "neurobench": {"enabled": False}}
    plots = next(st for st in build_stages(cfg) if st.name == "tables").dvc_plots
    assert set(plots) == {"tradeoff_direct", "tradeoff_finetuned"}
    assert not any("entropy" in f or "converted" in f for p in plots.values() for f in p["y"])
