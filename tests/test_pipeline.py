"""The whole DAG on a tiny config (run once per session by Snakemake: the `tiny_project` fixture):
its outputs exist and are sane, its logs hold lines, both tools' HTML views and metrics, and
reruns do nothing. Reruns after a change: test_pipeline_reruns.py; computed code inputs:
test_pipeline_code.py; two clean runs to the same bytes: test_pipeline_determinism.py."""

import re

import pytest
from conftest import dvc_changed, planned_jobs, sh, tiny_config

pytestmark = pytest.mark.slow


def test_logs_hold_lines_not_progress_bar_refreshes(project, tiny_project):
    """stderr is not a terminal here: no tqdm carriage returns in the stage logs or Snakemake's output."""
    logs = sorted((project / "logs").glob("*.log"))
    assert len(logs) >= 20
    for path in logs + [tiny_project.parent / "snakemake.out"]:
        assert "\r" not in path.read_text(), path.name
    assert "train_snn epoch 4: loss" in (project / "logs/train_snn.log").read_text()


def test_outputs_exist_and_are_sane(project):
    import json

    from seenn.methods.catalog import seenn1_label

    m = json.loads((project / "results/direct/metrics.json").read_text())
    T = tiny_config()["train"]["timesteps"]
    assert len(m["test"]["accuracy_per_t"]) == T
    assert all(0 <= a <= 100 for a in m["test"]["accuracy_per_t"])
    assert m["test"]["accuracy_per_t"][-1] > 30  # far above 10 % chance even for the tiny net
    assert 1 <= m["test"]["aet"] <= T and 1 <= m["test"]["empirical_aet"] <= T
    s = json.loads((project / "results/direct/seenn1.json").read_text())
    for r in s["scores"].values():
        assert 1 <= r["test_avg_timesteps"] <= T
        assert sum(r["test_exit_histogram"]) == m["test"]["n"]
    # the engine stages run the SNN the SEENN-II policy was trained for: the fine-tuned one
    energy = json.loads((project / "results/finetuned/energy.json").read_text())
    names = [e["method"] for e in energy["methods"]]
    assert names == [f"Fixed T={t}" for t in range(1, T + 1)] + [
        "SEENN-I (confidence)", "SEENN-I (entropy) = DT-SNN", "SEENN-I certified (confidence)",
        "SEENN-I certified (entropy) = DT-SNN", "SpikeCP (1 - p)", "SEENN-II", "SEENN-II policy network alone", "ANN (same architecture)"]
    runs = [e for e in energy["methods"] if e["avg_timesteps"] is not None]  # the SNN methods
    assert len(runs) == T + 6 and all(e["engine_matches_posthoc"] for e in runs)  # the engine equals the post-hoc results
    # the certified and conformal rules run in the engine where the guarantee stage put them post hoc
    g = json.loads((project / "results/finetuned/guarantee.json").read_text())
    s_ft = json.loads((project / "results/finetuned/seenn1.json").read_text())
    by = {e["method"]: e for e in energy["methods"]}
    for score in ("confidence", "entropy"):
        ltt = g["scores"][score]["ltt"]
        e = by[seenn1_label(score, "certified")]
        assert (e["accuracy"], e["avg_timesteps"]) == pytest.approx((ltt["test_accuracy"], ltt["test_avg_timesteps"]))
    c = by["SpikeCP (1 - p)"]
    conf = g["conformal"]["test"]
    assert (c["accuracy"], c["avg_timesteps"]) == pytest.approx((conf["accuracy"], conf["avg_timesteps"]))
    assert "Learn-then-Test" in (project / "results/tables/guarantee.md").read_text()
    assert (project / "results/figures/guarantee_epsilon.png").stat().st_size > 0
    # every published rule on one footing, on clean and on shifted inputs (thresholds from clean validation)
    import pandas as pd

    rules = pd.read_csv(project / "results/tables/rules.csv")
    assert set(rules["model"]) == {"Direct-trained SNN", "Fine-tuned SNN", "QCFS-converted SNN"}
    assert {"SpikeCP (1 - p)", "SEENN-I (entropy) = DT-SNN", "SEENN-I certified (confidence)"} <= set(rules["rule"])
    shifted = pd.read_csv(project / "results/tables/rules_shifted.csv")
    assert sorted(shifted["noise_std"].unique()) == [0.0, *tiny_config()["shift"]["noise_std"]]
    clean = shifted[(shifted["noise_std"] == 0) & (shifted["model"] == "Fine-tuned SNN")].set_index("rule")
    assert clean.at["SEENN-I (confidence)", "accuracy"] == pytest.approx(s_ft["scores"]["confidence"]["test_accuracy"])
    for name in ("rules_pareto", "rules_shifted"):
        assert (project / f"results/figures/{name}.png").stat().st_size > 0
    # NeuroBench on the engine, beside the project's counts on the same samples
    nbj = json.loads((project / "results/finetuned/neurobench.json").read_text())
    assert nbj["samples"] == 20 and [m["method"] for m in nbj["methods"]] == [f"Fixed T={T}", "SEENN-I (confidence)"]
    for m in nbj["methods"]:
        own = m["project"]
        assert m["neurobench"]["SynapticOperations"]["Effective_ACs"] == pytest.approx(own["ACs"] - own["ACs_on_analog_input_layers"])
    assert energy["policy_share"]["of_one_timestep_dense_ops_percent"] > 0 and "Authors' counting" in energy["conventions"]
    fixed = [e["acs"] + e["macs"] for e in energy["methods"][:T]]
    assert fixed == sorted(fixed) and energy["methods"][-1]["acs"] == 0
    m_ft = json.loads((project / "results/finetuned/metrics.json").read_text())
    for e, acc in zip(energy["methods"][:T], m_ft["test"]["accuracy_per_t"]):
        assert e["accuracy"] == pytest.approx(acc)
    s2 = json.loads((project / "results/seenn2/seenn2.json").read_text())
    e2 = energy["methods"][names.index("SEENN-II")]
    assert e2["accuracy"] == pytest.approx(s2["test_accuracy"]) and e2["avg_timesteps"] == pytest.approx(s2["test_avg_timesteps"])
    lat = json.loads((project / "results/measurements/latency.json").read_text())
    timed = [n for n in names if n != "SEENN-II policy network alone"] + ["Fixed T=1 (multi-step)", f"Fixed T={T} (multi-step)"]
    assert {(r["method"], r["batch_size"]) for r in lat["rows"]} == {(n, b) for n in timed for b in (1, 64)}
    assert lat["environment"]["precision"] == "fp32" and all(s["best_fixed_path"] in ("engine", "multi-step")
                                                              for s in lat["summary"])
    assert all(r["median_s"] > 0 for r in lat["rows"])
    assert "Fixed T=1" in (project / "results/measurements/latency.md").read_text()
    methods = (project / "results/tables/methods.md").read_text()
    assert "SEENN-I (confidence)" in methods and "Oracle" in methods
    # the conversion branch: QCFS ANN accuracy, converted SNN at every T up to conversion.max_timesteps
    Tc = tiny_config()["conversion"]["max_timesteps"]
    ann = json.loads((project / "results/converted/ann_metrics.json").read_text())
    assert ann["test"]["accuracy"] > 30 and ann["levels"] == tiny_config()["conversion"]["levels"]
    mc = json.loads((project / "results/converted/metrics.json").read_text())
    assert len(mc["test"]["accuracy_per_t"]) == Tc and mc["timesteps"] == Tc
    assert 1 <= mc["test"]["aet"] <= Tc and 1 <= mc["test"]["empirical_aet"] <= Tc
    sc = json.loads((project / "results/converted/seenn1.json").read_text())
    for r in sc["scores"].values():
        assert 1 <= r["test_avg_timesteps"] <= Tc and sum(r["test_exit_histogram"]) == mc["test"]["n"]
    assert "QCFS-converted SNN" in methods and "QCFS ANN" in (project / "results/tables/conversion.md").read_text()
    s2c = json.loads((project / "results/converted/seenn2/seenn2.json").read_text())  # SEENN-II on the converted SNN
    assert s2c["timesteps"] == Tc and 1 <= s2c["test_avg_timesteps"] <= Tc and sum(s2c["test_exit_histogram"]) == mc["test"]["n"]
    assert "QCFS-converted SNN" in (project / "results/tables/seenn2_sweep.md").read_text()
    pdf = (project / "reports/seenn_report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


def test_teas_outputs_are_sane(project):
    """TEAS on every SNN: windows within [1, T] that follow the activity, its fixed-T row equal to the
    SNN's own accuracy at T (layer-major at equal windows is the network's forward), the retrained
    windows shortened to the ratio, the tables, figures and the report."""
    import json

    from seenn.teas.allocation import scaling_ratio
    from seenn.teas.variants import ALLOCATION, CONTROL, FIXED, NOREG, RETRAINED

    cfg = tiny_config()
    T_mlp = cfg["teas"]["mnist"]["timesteps"]
    for target, T in (("direct", cfg["train"]["timesteps"]), ("finetuned", cfg["train"]["timesteps"]),
                      ("converted", cfg["conversion"]["max_timesteps"]), ("mnist_full", T_mlp), ("mnist_scale", T_mlp)):
        ev = json.loads((project / f"results/teas/{target}/evaluation.json").read_text())
        alloc = json.loads((project / f"results/teas/{target}/allocation.json").read_text())
        assert ev["T"] == T and alloc["activity"] == "layer"
        act = [r["raw"] for r in alloc["layers"]]
        for r in ev["rows"]:
            assert all(1 <= w <= T for w in r["windows"]) and 0 <= r["accuracy"] <= 100 and r["energy_uj"] > 0
        for r in (r for r in ev["rows"] if r["variant"] == ALLOCATION):  # more active layers: never fewer steps
            w = r["windows"]
            assert all(w[i] >= w[j] for i in range(len(w)) for j in range(len(w)) if act[i] > act[j]), (target, w)
        if target in ("direct", "finetuned"):
            m = json.loads((project / f"results/{target}/metrics.json").read_text())
            assert ev["rows"][0]["variant"] == FIXED
            assert ev["rows"][0]["accuracy"] == pytest.approx(m["test"]["accuracy_per_t"][-1])
        weights = None if alloc["ratio_weights"] == "layers" else ev["costs"]
        for r in (r for r in ev["rows"] if r["variant"] == RETRAINED):  # the final adjustment meets the ratio
            assert scaling_ratio(r["windows"], weights, T) <= r["ratio"] + 1e-12 or min(r["windows"]) == 1
            assert all(w <= s for w, s in zip(r["windows"], r["start_windows"]))
    # one cost axis: TEAS's fixed-T run (layer-major) costs what the engine's fixed T costs, same counter
    energy = json.loads((project / "results/finetuned/energy.json").read_text())
    engine_fixed = next(e for e in energy["methods"] if e["method"] == f"Fixed T={cfg['train']['timesteps']}")
    teas_fixed = json.loads((project / "results/teas/finetuned/evaluation.json").read_text())["rows"][0]
    assert teas_fixed["energy_uj"] == pytest.approx(engine_fixed["energy_uj"], rel=1e-6)
    variants = {r["variant"] for r in json.loads((project / "results/teas/direct/evaluation.json").read_text())["rows"]}
    assert variants == {FIXED, ALLOCATION, RETRAINED, NOREG}
    mlp = json.loads((project / "results/teas/mnist_scale/evaluation.json").read_text())
    assert [r["variant"] for r in mlp["rows"]] == [FIXED, ALLOCATION, CONTROL, RETRAINED]
    for name in ("teas", "teas_windows", "teas_ablation", "teas_activity", "teas_mnist", "teas_settings"):
        assert (project / f"results/tables/{name}.md").stat().st_size > 0
    for name in ("teas_activity", "teas_allocation", "teas_combined"):
        assert (project / f"results/figures/{name}.png").read_bytes().startswith(b"\x89PNG")
    latency = (project / "results/measurements/teas_latency.md").read_text()
    assert "TEAS retrained" in latency and "vs_fixed_layer_major" in latency


def test_seenn2_outputs_are_sane(project):
    import json

    import pandas as pd

    cfg = tiny_config()
    T = cfg["train"]["timesteps"]
    ft = json.loads((project / "results/finetuned/metrics.json").read_text())
    assert set(ft) >= {"train", "val", "test"} and ft["train"]["n"] == cfg["data"]["train_size"]
    s2 = json.loads((project / "results/seenn2/seenn2.json").read_text())
    assert s2["beta"] == cfg["seenn2"]["beta"] and 1 <= s2["test_avg_timesteps"] <= T
    assert sum(s2["test_exit_histogram"]) == ft["test"]["n"]
    assert s2["ops"]["policy_macs"] > 0 and s2["ops"]["snn_macs_per_timestep"] > 0
    sweep = pd.read_csv(project / "results/seenn2/sweep.csv")
    assert sweep["beta"].tolist() == cfg["seenn2"]["betas"]
    compare = pd.read_csv(project / "results/seenn2/compare.csv")
    # the tiny policy is narrower than the paper's Table 6 one, which is trained beside it
    assert len(compare) == 6 and set(compare["estimator"]) == {"expected", "reinforce"}
    assert compare["policy"].tolist() == ["configured"] * 5 + ["table6"]
    main = compare.iloc[0]  # the configured policy, as seenn2_evaluate reports it
    assert main["test_accuracy"] == pytest.approx(s2["test_accuracy"], abs=1e-6)
    assert main["test_avg_timesteps"] == pytest.approx(s2["test_avg_timesteps"], abs=1e-6)
    log = pd.read_csv(project / "results/seenn2/policy_log.csv")
    assert len(log) == cfg["seenn2"]["epochs"] * len(cfg["seenn2"]["betas"])
    assert {"mean_reward", "mean_u", "accuracy"} <= set(log.columns)
    methods = (project / "results/tables/methods.md").read_text()
    assert "SEENN-II (expected, β=1)" in methods and "SEENN-II (reinforce" in methods and "Fine-tuned SNN" in methods
    assert "SEENN-I (confidence) test acc" in (project / "results/tables/seenn2_sweep.md").read_text()
    assert {"seenn1_confidence_alpha", "seenn1_confidence_test_accuracy"} <= set(sweep.columns)
    # the converted SNN: one stage per training rule, the reported one picked on validation
    variants = pd.read_csv(project / "results/converted/seenn2/variants.csv")
    assert variants["variant"].tolist() == ["paper", "pow2", "linear", "pow2_linear"] and variants["chosen"].sum() == 1
    s2c = json.loads((project / "results/converted/seenn2/seenn2.json").read_text())
    assert s2c["variant"] == variants[variants["chosen"]]["variant"].item() and s2c["selected_by"] == "validation"


def test_html_reports_and_metrics_of_both_tools(project, tmp_path):
    """Snakemake's HTML report (figures, tables and PDFs declared with report()), `dvc plots show`
    from the declared plots, and `dvc metrics show` listing only the headline files."""
    html = tmp_path / "report.html"
    sh(project, "snakemake", "--report", str(html), "--cores", "1")
    text = html.read_text()
    assert html.stat().st_size > 50_000 and "1 Summary" in text and "summary.png" in text
    sh(project, "dvc", "plots", "show", "-o", str(tmp_path / "plots"))
    plots = (tmp_path / "plots" / "index.html").read_text()
    # the research curves (dvc.yaml's top-level plots): SEENN-I over alpha and fixed T per SNN, SEENN-II over beta
    assert all(f"tradeoff_{snn}" in plots for snn in ("direct", "finetuned", "converted"))
    assert "SEENN-II over beta" in plots and '"test_avg_timesteps": ' in plots and '"avg_timesteps": "1.000000"' in plots
    out = sh(project, "dvc", "metrics", "show").stdout
    listed = set(re.findall(r"(results/\S+\.json)", out))
    assert "results/metrics/headline/finetuned-seenn2.json" in listed
    assert listed and all(p.startswith("results/metrics/headline/") for p in listed)
    header = next(line for line in out.splitlines() if line.startswith("Path"))
    assert header.split() == ["Path", "accuracy", "aet", "avg_timesteps", "empirical_aet", "energy_uJ"]


def test_reruns_do_nothing_under_both_tools(project):
    assert planned_jobs(project) == set()
    assert dvc_changed(project) == set()
    out = sh(project, "dvc", "repro").stdout
    assert "Running stage" not in out
    assert planned_jobs(project) == set()


def test_readme_blocks_build_from_the_run_tables_that_dvc_lock_records(project, tmp_path):
    """`seenn readme-results`'s blocks on a real run's tables: every table they read is one the
    run's dvc.lock records; the command itself refuses this run (not the default config)."""
    from seenn.cli import lock_outs
    from seenn.report import readme

    blocks = readme.build(project, 1.0)
    assert set(blocks) == {"seenn", "teas"}
    outs = lock_outs(project / "dvc.lock")
    for name, block in blocks.items():
        parsed = readme.parse(block)[name]
        assert parsed["tables"] and all(outs[p] == md5 for p, md5 in parsed["tables"].items())
        assert readme.md5_text(parsed["body"]) == parsed["md5"]
    body = readme.parse(blocks["seenn"])["seenn"]["body"]
    assert "SEENN-II" in body and "Fixed T=1" in body
    assert "- AET / empirical AET" in body and "- Energy per inference" in body and " cores, device cpu" in body
    out = sh(project, "seenn", "readme-results", "--readme", str(tmp_path / "README.md"), check=False)
    assert out.returncode == 2 and "is not the default config" in out.stderr


def test_energy_files_do_not_depend_on_the_energy_batch_size(project, tmp_path):
    """The energy stage rerun at another `engine.energy_batch_size` (7 instead of the tiny
    config's 100) writes every one of its files byte for byte as before: counts are whole
    numbers summed exactly over the real samples, divided once."""
    import yaml

    outs = ["results/finetuned/energy.json", "results/finetuned/energy_layers.csv", "results/tables/energy.csv",
            "results/tables/energy.md"]
    before = {f: (project / f).read_bytes() for f in outs}
    cfg = yaml.safe_load((project / "params.yaml").read_text())
    assert cfg["engine"]["energy_batch_size"] != 7
    cfg["engine"]["energy_batch_size"] = 7
    other = tmp_path / "params_bs7.yaml"
    other.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        sh(project, "seenn", "run", "energy", "--config", str(other))
        changed = [f for f in outs if (project / f).read_bytes() != before[f]]
        assert not changed, changed
    finally:
        for f, data in before.items():
            (project / f).write_bytes(data)
