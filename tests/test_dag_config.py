"""The stage table follows the config: the conversion switch, one run per extra seed (with its
seed as an override of its config slice), and the paper comparison; the tables on synthetic inputs."""

import copy
import re
import json

import pandas as pd
import pytest
from conftest import ROOT

from seenn.common.errors import SeennError
from seenn.pipeline.config import load_config, validate_config
from seenn.pipeline.table import STAGES, build_stages, dvc_yaml, seed_stage, write_params_file
from seenn.report import tables


@pytest.fixture
def cfg() -> dict:
    return load_config(ROOT / "params.yaml")


def _table(cfg, **changes) -> dict:
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            cfg[section][name] = value
        else:
            cfg[section] = value
    return {st.name: st for st in build_stages(validate_config(cfg))}


def _closed(table: dict) -> None:
    produced = {}
    for st in table.values():
        for path in st.inputs.values():
            assert path in produced or path.startswith("config/"), f"{st.name} reads {path}, which no earlier stage writes"
        for path in st.outputs.values():
            assert path not in produced, path
            produced[path] = st.name


def test_conversion_switch_omits_the_branch_and_its_files(cfg):
    table = _table(cfg, conversion__enabled=False)
    default = {st.name for st in STAGES}
    gone = default - set(table)
    assert gone == {"train_ann", "convert_snn", "evaluate_converted", "seenn1_converted", "guarantee_converted",
                    "evaluate_shifted_converted", "seenn2_select_converted",
                    "teas_allocate_converted", "teas_evaluate_converted"} | {
        f"seenn2_{k}_converted_{r}" for k in ("train", "evaluate") for r in ("paper", "pow2", "linear", "pow2_linear")}
    for name in ("tables", "figures", "report"):
        assert not [p for p in table[name].inputs.values() if "/converted/" in p], name
    assert "conversion_csv" not in table["tables"].outputs and "conversion" not in table["figures"].outputs
    _closed(table)


def test_each_extra_seed_gets_its_own_runs(cfg):
    table = _table(cfg, seeds=[cfg["seed"], 7])
    seeded = sorted(n for n in table if n.endswith("_seed7"))
    main_runs = [st.name for st in STAGES if (st.checkpoints or st.name.startswith(("evaluate_", "seenn1_", "seenn2_", "convert")))
                 and not st.name.startswith("evaluate_shifted_")]  # the shifted inputs, as the guarantee: main seed only
    assert seeded == sorted(f"{n}_seed7" for n in main_runs if n != "seenn2_compare")
    assert not [n for n in table if n.endswith(f"_seed{cfg['seed']}")]  # the main seed is the main run
    st = table["finetune_snn_seed7"]
    assert st.inputs["model"] == "results/seeds/7/direct/snn.pt" and st.inputs["train"] == "data/prepared/train.pt"
    assert st.outputs["model"] == "results/seeds/7/finetuned/snn.pt" and st.overrides == {"seed": 7}
    assert {"seed", "seeds"} <= set(st.params)
    assert table["seenn2_evaluate_seed7"].outputs["result"] == "results/seeds/7/seenn2/seenn2.json"
    assert table["tables"].inputs["seed7_metrics_converted"] == "results/seeds/7/converted/metrics.json"
    assert {"seeds_csv", "seeds_md"} <= set(table["tables"].outputs) and "seeds_csv" in table["report"].inputs
    assert "energy_seed7" not in table and table["energy"].inputs == {st.name: st for st in STAGES}["energy"].inputs
    _closed(table)
    assert "train_snn_seed7:" in dvc_yaml(list(table.values()))


def test_seed_override_reaches_the_params_file(cfg, tmp_path, monkeypatch):
    """A seed's stage sees `seed` = s in its config slice, so Snakemake reruns it when s changes."""
    monkeypatch.chdir(tmp_path)
    train = {st.name: st for st in STAGES}["train_snn"]
    st = seed_stage(train, 42)
    assert st.name == "train_snn_seed42" and st.params_file == "results/params/train_snn_seed42.json"
    slice_ = json.loads(write_params_file(st, {**cfg, "seeds": [42]}).read_text())
    assert slice_["seed"] == 42 and slice_["seeds"] == [42] and slice_["train"] == cfg["train"]
    assert json.loads(write_params_file(train, cfg).read_text())["seed"] == cfg["seed"]


def test_paper_row_must_name_a_row(cfg):
    table = _table(cfg, report__paper_row="resnet19_cifar10")
    assert table["tables"].inputs["paper_numbers"] == "config/paper/numbers.yaml"
    assert "paper_comparison_csv" in table["tables"].outputs and "paper_numbers" in table["report"].inputs
    cfg["report"]["paper_row"] = "resnet99_mnist"
    with pytest.raises(SeennError, match=r"'report.paper_row'.*resnet99_mnist.*rows: resnet19_cifar10, "):
        validate_config(cfg)


def test_default_table_has_no_seed_or_paper_files():
    names = {st.name: st for st in STAGES}
    assert not [n for n in names if "_seed" in n]
    assert not {"seeds_csv", "paper_comparison_csv"} & set(names["tables"].outputs)


def test_a_users_split_list_is_an_input_of_the_data_stage(cfg, tmp_path, monkeypatch):
    """Editing data.split_list's file reruns prepare_data (and all that follows) under both tools."""
    import hashlib

    monkeypatch.chdir(tmp_path)
    (tmp_path / "own.txt").write_text("class,file,split\nbird,b0.aedat4,train\n")
    cfg["data"].update(name="cifar10dvs", split_list="own.txt",
                       split_list_sha256=hashlib.sha256((tmp_path / "own.txt").read_bytes()).hexdigest())
    for section in ("train", "finetune", "conversion"):
        cfg[section]["augment"] = "none"
    cfg["shift"]["enabled"] = False  # pixel noise is for images
    table = _table(cfg)
    assert table["prepare_data"].inputs == {"split_list": "own.txt"}
    import copy

    without = copy.deepcopy(cfg)
    without["data"].update(split_list=None, split_list_sha256=None)  # the same dataset with the committed list
    assert {n: st.inputs for n, st in table.items() if n != "prepare_data"} == {
        n: st.inputs for n, st in _table(without).items() if n != "prepare_data"}
    import yaml

    deps = yaml.safe_load(dvc_yaml(list(table.values())))["stages"]["prepare_data"]["deps"]
    assert deps[0] == "own.txt"
    assert {st.name: st for st in STAGES}["prepare_data"].inputs == {}  # the default: the committed list, in the code


# --- the tables on synthetic inputs ---------------------------------------------------------

def _run(tmp_path, name: str, acc: float, aet: float, seed2_acc: float) -> dict:
    """The result files of one synthetic run (direct and fine-tuned SNN, T = 4)."""
    d = tmp_path / name
    d.mkdir()
    metrics = {"test": {"timesteps": 4, "accuracy_per_t": [acc - 3, acc - 2, acc - 1, acc], "aet": aet,
                        "empirical_aet": aet - 0.1, "oracle_accuracy": acc + 1, "oracle_timesteps": 1.5}}
    seenn1 = {"scores": {"confidence": {"test_accuracy": acc - 0.5, "test_avg_timesteps": 1.2}}}
    files = {"metrics_direct": metrics, "seenn1_direct": seenn1, "metrics_finetuned": metrics, "seenn1_finetuned": seenn1,
             "seenn2_result": {"beta": 1.0, "test_accuracy": seed2_acc, "test_avg_timesteps": 1.1}}
    out = {}
    for role, obj in files.items():
        (d / f"{role}.json").write_text(json.dumps(obj))
        out[role] = str(d / f"{role}.json")
    return out


def test_seeds_table_gives_mean_std_and_n(tmp_path):
    runs = {1000: _run(tmp_path, "a", 90.0, 1.2, 91.0), 1001: _run(tmp_path, "b", 92.0, 1.4, 93.0)}
    df = tables.seeds_table(runs)
    row = df[(df["model"] == "Direct-trained SNN") & (df["method"] == "Fixed T=4")].iloc[0]
    assert (row["mean"], row["n"]) == (91.0, 2) and row["std"] == pytest.approx(2 ** 0.5)
    aet = df[(df["model"] == "Direct-trained SNN") & (df["method"] == tables.AET)].iloc[0]
    assert aet["mean"] == pytest.approx(1.3) and aet["quantity"] == tables.AVG_T
    s2 = df[df["method"] == "SEENN-II (β=1)"]
    assert list(s2["model"].unique()) == ["Fine-tuned SNN"] and set(s2["mean"]) == {92.0, 1.1}
    assert set(df["method"]) >= {"SEENN-I (confidence)", tables.EMPIRICAL_AET, tables.ORACLE} and set(df["n"]) == {2}


def test_split_runs_parts_the_inputs_by_seed(tmp_path):
    main, other = _run(tmp_path, "a", 90.0, 1.2, 91.0), _run(tmp_path, "b", 92.0, 1.4, 93.0)
    inputs = {**main, **{tables.seed_role(7, r): v for r, v in other.items()}}
    assert tables.split_runs(inputs, 1000, [1000, 7]) == {1000: main, 7: other}


def test_paper_comparison_puts_the_paper_beside_this_run(tmp_path):
    runs = {1: _run(tmp_path, "a", 90.0, 1.2, 91.0), 2: _run(tmp_path, "b", 92.0, 1.4, 93.0)}
    row = {"title": "x", "source": "y", "max_timesteps": 4, "fixed_t_accuracy": None, "seenn1_accuracy": 96.07,
           "seenn1_avg_timesteps": 1.09, "seenn2_accuracy": 96.1, "seenn2_avg_timesteps": 1.08, "aet": 1.1309,
           "empirical_aet": 1.1188}
    df = tables.paper_comparison(row, runs).set_index("metric")
    assert list(df.index) == [m[0] for m in tables.PAPER_METRICS]
    fixed = df.loc["accuracy at fixed T = max (%)"]
    assert fixed["paper"] == tables.NOT_GIVEN and pd.isna(fixed["difference"]) and fixed["this_run"] == 91.0
    aet = df.loc["AET (Eq. 4)"]
    assert aet["paper"] == 1.1309 and aet["this_run"] == pytest.approx(1.3) and aet["n"] == 2
    assert aet["difference"] == pytest.approx(1.3 - 1.1309) and aet["snn"] == "Direct-trained SNN"
    assert df.loc["SEENN-II accuracy (%)", "snn"] == "Fine-tuned SNN (SEENN-II (β=1))"
    assert df.loc["SEENN-II accuracy (%)", "difference"] == pytest.approx(92.0 - 96.1)
    md = tables.paper_comparison_markdown(df.reset_index(), "resnet19_cifar10", row)
    assert "not given in the texts" in md and "1.3000 ± 0.1414 (n=2)" in md and "directly trained" in md


def test_paper_comparison_puts_seenn1_at_a_certified_alpha_beside_the_paper(tmp_path):
    """The certified row: the main seed's Learn-then-Test figures (its guarantee stage ran; n = 1
    even with more seeds), full T where none was certified; void under the authors' protocol."""
    row = {"seenn1_accuracy": 96.07, "seenn1_avg_timesteps": 1.09}
    main, other = _run(tmp_path, "a", 90.0, 1.2, 91.0), _run(tmp_path, "b", 92.0, 1.4, 93.0)
    g = tmp_path / "guarantee.json"
    g.write_text(json.dumps({"scores": {"confidence": {"ltt": {"test_accuracy": 89.0, "test_avg_timesteps": 1.5}}}}))
    df = tables.paper_comparison(row, {1: {**main, "guarantee_direct": str(g)}, 2: other}).set_index("metric")
    acc = df.loc["SEENN-I (confidence) at a certified alpha: accuracy (%)"]
    assert (acc["this_run"], acc["n"], acc["paper"]) == (89.0, 1, 96.07)
    assert acc["difference"] == pytest.approx(89.0 - 96.07)
    assert df.loc["SEENN-I (confidence) at a certified alpha: average timesteps", "this_run"] == 1.5
    g.write_text(json.dumps({"void": "data.protocol is 'authors'"}))
    df = tables.paper_comparison(row, {1: {**main, "guarantee_direct": str(g)}}).set_index("metric")
    void = df.loc["SEENN-I (confidence) at a certified alpha: accuracy (%)"]
    assert "void" in void["snn"] and void["n"] == 0 and pd.isna(void["this_run"])
    assert "| void " in tables.paper_comparison_markdown(df.reset_index(), "resnet19_cifar10", row)


def _teas_files(table: dict) -> set[str]:
    return {p for st in table.values() for p in (*st.inputs.values(), *st.outputs.values()) if "teas" in p}


def test_teas_switch_omits_every_teas_stage_and_file(cfg):
    on = _table(copy.deepcopy(cfg))
    assert {n for n in on if n.startswith("teas_")} == {
        "teas_train_mnist", "teas_retrain_mnist_fixed", "teas_allocate_direct", "teas_allocate_finetuned",
        "teas_allocate_converted", "teas_allocate_mnist_full", "teas_allocate_mnist_scale", "teas_retrain_direct",
        "teas_retrain_direct_noreg", "teas_retrain_mnist_full", "teas_retrain_mnist_scale", "teas_evaluate_direct",
        "teas_evaluate_finetuned", "teas_evaluate_converted", "teas_evaluate_mnist_full", "teas_evaluate_mnist_scale",
        "teas_latency"}
    _closed(on)
    assert "results/figures/teas_combined.png" in on["figures"].outputs.values()
    assert "results/tables/teas.csv" in on["tables"].outputs.values()
    assert on["report_measurements"].inputs["teas_latency_csv"] == "results/measurements/teas_latency.csv"
    # the latency measurement stays out of the deterministic report's inputs
    assert not any("measurements" in p for p in on["report"].inputs.values())
    cfg["teas"]["enabled"] = False
    off = _table(cfg)
    assert not any(n.startswith("teas") for n in off) and _teas_files(off) == set()
    _closed(off)
    assert set(on) - set(off) == {n for n in on if n.startswith("teas_")}


def test_teas_mnist_row_only_on_digits_and_converted_only_with_conversion(cfg):
    no_conv = _table(copy.deepcopy(cfg), conversion__enabled=False)
    assert "teas_allocate_converted" not in no_conv and "teas_evaluate_converted" not in no_conv
    assert "teas_evaluate_direct" in no_conv and not any("teas/converted" in p for p in _teas_files(no_conv))
    _closed(no_conv)
    cifar = copy.deepcopy(cfg)
    cifar["data"]["name"] = "cifar10"
    table = _table(cifar)
    assert not any("mnist" in n for n in table) and not any("mnist" in p for p in _teas_files(table))
    assert "teas_evaluate_finetuned" in table
    _closed(table)


def test_teas_refuses_an_arch_it_cannot_run_and_a_ratio_outside_the_sweep(cfg):
    bad = copy.deepcopy(cfg)
    bad["model"]["arch"] = "sew_resnet34"
    with pytest.raises(SeennError, match="'teas.enabled' is true but 'model.arch' is 'sew_resnet34'"):
        validate_config(bad)
    bad["teas"]["enabled"] = False
    validate_config(bad)  # switched off: any arch
    bad = copy.deepcopy(cfg)
    bad["teas"]["ratio"] = 0.5
    with pytest.raises(SeennError, match="'teas.ratio' \\(0.5\\) must be one of 'teas.ratios'"):
        validate_config(bad)
    bad["teas"]["ratios"] = [0.5, 1.5]
    with pytest.raises(SeennError, match="teas.ratios"):
        validate_config(bad)


def test_ratio_sweep_is_a_config_change_that_keeps_the_dag_shape(cfg):
    sweep = copy.deepcopy(cfg)
    sweep["teas"]["ratios"] = [0.4, 0.6, 0.8]
    a, b = _table(copy.deepcopy(cfg)), _table(sweep)
    assert set(a) == set(b) and all(a[n].outputs == b[n].outputs for n in a)


# --- teas.only: TEAS on the converted SNN alone (the TEAS paper's Table 2 rows) ---------------------

def _teas_only(cfg, **teas) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["data"]["name"] = "cifar10"  # no MNIST row: the converted SNN's stages alone
    cfg["teas"].update(only=True, **teas)
    return _table(cfg)


def test_teas_only_plans_the_conversion_and_teas_on_it_alone(cfg):
    table = _teas_only(cfg)
    assert list(table) == ["prepare_data", "train_ann", "convert_snn", "evaluate_converted", "teas_allocate_converted",
                           "teas_evaluate_converted", "tables", "figures", "report"]
    _closed(table)
    files = {p for st in table.values() for p in (*st.inputs.values(), *st.outputs.values())}
    assert not [p for p in files if any(b in p for b in ("/direct/", "/finetuned/", "seenn1", "seenn2", "guarantee",
                                                        "energy", "latency", "measurements", "shifted", "neurobench"))]
    assert "logits_train" not in table["evaluate_converted"].outputs  # nothing trains on them: no SEENN-II
    assert "retrained" not in table["teas_evaluate_converted"].inputs
    assert {"teas_csv", "conversion_csv"} <= set(table["tables"].outputs) and "teas_ablation_csv" not in table["tables"].outputs
    assert set(table["figures"].outputs) == {"conversion", "training_ann", "teas_activity", "teas_allocation"}
    assert {"teas_csv", "teas_activity", "conversion_csv", "metrics_converted"} <= set(table["report"].inputs)
    from seenn.report.sections import present

    shown = [s.key for s in present(table["report"].inputs)]
    assert shown == ["data", "conversion", "teas", "notes", "provenance", "config"]
    doc = yaml_dvc(table)
    assert set(doc["stages"]) == set(table) | {"stage_table"} and {"teas.only", "teas.retrain_converted"} <= set(
        doc["stages"]["stage_table"]["params"])


def yaml_dvc(table: dict) -> dict:
    import yaml

    return yaml.safe_load(dvc_yaml(list(table.values())))


def test_teas_only_with_a_paper_row_and_the_converted_snn_retrained(cfg):
    cfg["report"]["paper_row"] = "resnet19_cifar10"
    table = _teas_only(cfg, retrain_converted=True)
    assert table["teas_retrain_converted"].outputs["model"] == "results/teas/converted/retrained.pt"
    assert table["teas_evaluate_converted"].inputs["retrained"] == "results/teas/converted/retrained.pt"
    assert "paper_comparison_csv" in table["tables"].outputs and "paper_numbers" in table["report"].inputs
    _closed(table)
    on_digits = copy.deepcopy(cfg)
    on_digits["teas"].update(only=True)
    assert {"teas_train_mnist", "teas_evaluate_mnist_full"} <= set(_table(on_digits))  # TEAS's own MNIST row stays


def test_retrain_converted_adds_one_stage_to_the_full_dag(cfg):
    cfg["teas"]["retrain_converted"] = True
    table = _table(cfg)
    assert set(table) - {st.name for st in STAGES} == {"teas_retrain_converted"}
    assert "retrained" in table["teas_evaluate_converted"].inputs and "retrained" not in BY_DEFAULT()["teas_evaluate_converted"].inputs
    _closed(table)


def BY_DEFAULT() -> dict:
    return {st.name: st for st in STAGES}


@pytest.mark.parametrize("change, message", [
    ({"conversion": {"enabled": False}}, "'teas.only' is true but 'conversion.enabled' is false"),
    ({"teas": {"enabled": False}}, "'teas.only' is true but 'teas.enabled' is false"),
    ({"seeds": [1000, 7]}, "'teas.only' is true but 'seeds' lists extra seeds"),
])
def test_teas_only_refuses_what_it_cannot_plan_in_one_line(cfg, change, message):
    cfg["teas"]["only"] = True
    for section, values in change.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    with pytest.raises(SeennError, match=re.escape(message)) as exc:
        validate_config(cfg)
    assert "\n" not in str(exc.value)


def test_retrain_converted_needs_the_conversion_branch(cfg):
    cfg["teas"]["retrain_converted"] = True
    cfg["conversion"]["enabled"] = False
    with pytest.raises(SeennError, match="'teas.retrain_converted' is true but 'conversion.enabled' is false"):
        validate_config(cfg)
