"""The whole DAG on a tiny config, through both front doors: outputs exist and are sane,
reruns do nothing, a figure setting reruns only figures + report, a training setting reruns
training and everything after it, and two clean runs give byte-identical outputs."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import NOT_DETERMINISTIC, make_project, sh, tiny_config

pytestmark = pytest.mark.slow


def planned_jobs(cwd: Path) -> set[str]:
    """Rule names a Snakemake dry run would execute (empty when nothing to do)."""
    out = sh(cwd, "snakemake", "-n", "--cores", "2").stdout
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:")[1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"all", "total", "job"}


def dvc_changed(cwd: Path) -> set[str]:
    out = sh(cwd, "dvc", "status").stdout
    if "up to date" in out:
        return set()
    return {m.group(1) for m in re.finditer(r"^(\w+):\s*$", out, re.M)}


def output_bytes(cwd: Path) -> dict[str, bytes]:
    files = {}
    for base in ("results", "data/prepared", "reports"):
        for p in sorted((cwd / base).rglob("*")):
            rel = str(p.relative_to(cwd))
            if p.is_file() and not rel.startswith(NOT_DETERMINISTIC):
                files[rel] = p.read_bytes()
    return files


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    cwd = make_project(tmp_path_factory.mktemp("dag") / "a", tiny_config())
    r = sh(cwd, "snakemake", "--cores", "2")
    (cwd.parent / "snakemake.out").write_text(r.stdout + r.stderr)  # what a terminal-less run's log holds
    return cwd


def scratch_copy(project: Path, dest: Path) -> Path:
    """A copy of the finished tiny project (modification times, Snakemake's metadata and DVC's
    cache and lock with it) for a test that reruns stages: the shared project stays as it was,
    with no second run to put it back."""
    shutil.copytree(project, dest, symlinks=True)
    return dest


def test_logs_hold_lines_not_progress_bar_refreshes(project):
    """stderr is not a terminal here: no tqdm carriage returns in the stage logs or Snakemake's output."""
    logs = sorted((project / "logs").glob("*.log"))
    assert len(logs) >= 20
    for path in logs + [project.parent / "snakemake.out"]:
        assert "\r" not in path.read_text(), path.name
    assert "train_snn epoch 4: loss" in (project / "logs/train_snn.log").read_text()


def test_outputs_exist_and_are_sane(project):
    import json

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
    assert names == [f"Fixed T={t}" for t in range(1, T + 1)] + ["SEENN-I (confidence)", "SEENN-I (entropy)", "SEENN-II",
                                                                  "SEENN-II policy network alone", "ANN (same architecture)"]
    runs = [e for e in energy["methods"] if e["avg_timesteps"] is not None]  # the SNN methods
    assert len(runs) == T + 3 and all(e["engine_matches_posthoc"] for e in runs)  # the engine equals the post-hoc results
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
    timed = [n for n in names if n != "SEENN-II policy network alone"]
    assert {(r["method"], r["batch_size"]) for r in lat["rows"]} == {(n, b) for n in timed for b in (1, 64)}
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
    """TEAS on every SNN: windows within [1, T], its fixed-T row equal to the SNN's own accuracy at
    T (layer-major at equal windows is the network's forward), the tables, figures and the report."""
    import json

    cfg = tiny_config()
    for target, T in (("direct", cfg["train"]["timesteps"]), ("finetuned", cfg["train"]["timesteps"]),
                      ("converted", cfg["conversion"]["max_timesteps"]), ("mnist", cfg["teas"]["mnist"]["timesteps"])):
        ev = json.loads((project / f"results/teas/{target}/evaluation.json").read_text())
        assert ev["T"] == T
        for r in ev["rows"]:
            assert all(1 <= w <= T for w in r["windows"]) and 0 <= r["accuracy"] <= 100 and r["energy_uj"] > 0
        if target in ("direct", "finetuned"):
            m = json.loads((project / f"results/{target}/metrics.json").read_text())
            assert ev["rows"][0]["variant"] == "fixed T"
            assert ev["rows"][0]["accuracy"] == pytest.approx(m["test"]["accuracy_per_t"][-1])
    # one cost axis: TEAS's fixed-T run (layer-major) costs what the engine's fixed T costs, same counter
    energy = json.loads((project / "results/finetuned/energy.json").read_text())
    engine_fixed = next(e for e in energy["methods"] if e["method"] == f"Fixed T={cfg['train']['timesteps']}")
    teas_fixed = json.loads((project / "results/teas/finetuned/evaluation.json").read_text())["rows"][0]
    assert teas_fixed["energy_uj"] == pytest.approx(engine_fixed["energy_uj"], rel=1e-6)
    variants = {r["variant"] for r in json.loads((project / "results/teas/direct/evaluation.json").read_text())["rows"]}
    assert variants == {"fixed T", "allocation only", "retrained", "retrained, no regularizer"}
    for name in ("teas", "teas_windows", "teas_ablation", "teas_activity", "teas_mnist"):
        assert (project / f"results/tables/{name}.md").stat().st_size > 0
    for name in ("teas_activity", "teas_allocation", "teas_combined"):
        assert (project / f"results/figures/{name}.png").read_bytes().startswith(b"\x89PNG")
    assert "TEAS" in (project / "results/measurements/teas_latency.md").read_text()


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
    assert (tmp_path / "plots" / "index.html").stat().st_size > 1_000
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


def test_figure_setting_reruns_only_figures_and_report(project, tmp_path):
    project = scratch_copy(project, tmp_path / "p")
    params = project / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["figures"]["dpi"] = 60
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        assert planned_jobs(project) == {"figures", "report"}
        assert dvc_changed(project) == {"figures", "report"}
        out = sh(project, "dvc", "repro").stdout
        assert set(re.findall(r"Running stage '(\w+)'", out)) == {"figures", "report"}
        # DVC ran them: Snakemake must agree nothing is left (no timestamp trap).
        assert planned_jobs(project) == set()
    finally:
        params.write_text(original)
    assert planned_jobs(project) == {"figures", "report"}  # DVC rewrote them: Snakemake goes by mtimes


def test_training_setting_reruns_training_and_everything_after(project):
    params = project / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["train"]["lr"] = 0.05
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        downstream = {"train_snn", "evaluate_direct", "seenn1_direct", "finetune_snn", "evaluate_finetuned",
                      "seenn1_finetuned", "seenn2_train", "seenn2_evaluate", "seenn2_compare", "energy", "latency",
                      "tables", "figures", "report", "report_measurements"} | TEAS_DIRECT | TEAS_FINETUNED
        assert planned_jobs(project) == downstream
        assert dvc_changed(project) >= {"train_snn"}
    finally:
        params.write_text(original)
    assert planned_jobs(project) == set()


REPORT_STAGES = {"tables", "figures", "report"}
# TEAS's stages downstream of each SNN (the MNIST row reads only the prepared splits)
TEAS_DIRECT = {"teas_allocate_direct", "teas_retrain_direct", "teas_retrain_direct_noreg", "teas_evaluate_direct",
               "teas_latency"}
TEAS_FINETUNED = {"teas_allocate_finetuned", "teas_evaluate_finetuned"}
TEAS_CONVERTED = {"teas_allocate_converted", "teas_evaluate_converted"}
TEAS_MNIST = {"teas_train_mnist", "teas_allocate_mnist", "teas_retrain_mnist", "teas_evaluate_mnist"}
TEAS_STAGES = TEAS_DIRECT | TEAS_FINETUNED | TEAS_CONVERTED | TEAS_MNIST
CONVERTED_POLICY = {f"seenn2_{kind}_converted_{rule}" for kind in ("train", "evaluate")
                    for rule in ("paper", "pow2", "linear", "pow2_linear")} | {"seenn2_select_converted"}


@pytest.mark.parametrize("key, value, first, branch", [
    ("lr", 0.05, "train_ann", {"train_ann", "convert_snn", "evaluate_converted", "seenn1_converted"} | CONVERTED_POLICY
     | TEAS_CONVERTED),
    ("max_timesteps", 6, "convert_snn", {"convert_snn", "evaluate_converted", "seenn1_converted"} | CONVERTED_POLICY
     | TEAS_CONVERTED),
])
def test_conversion_setting_reruns_only_the_conversion_branch(project, key, value, first, branch):
    """A conversion key reruns the conversion branch from the first stage that reads it, plus the
    report stages; never the direct branch (and max_timesteps does not retrain the ANN)."""
    params = project / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["conversion"][key] = value
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        assert planned_jobs(project) == branch | REPORT_STAGES
        assert dvc_changed(project) == {first, "report"}  # the report prints the whole config
    finally:
        params.write_text(original)
    assert planned_jobs(project) == set()


def test_seenn2_beta_list_reruns_only_the_policy_sweep_and_reports(project, tmp_path):
    project = scratch_copy(project, tmp_path / "p")
    params = project / "params.yaml"
    cfg = yaml.safe_load(params.read_text())
    cfg["seenn2"]["betas"] = cfg["seenn2"]["betas"] + [0.5]
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    policies = {"seenn2_train", "seenn2_evaluate", "seenn2_compare"} | CONVERTED_POLICY
    # the policy stages of both SNNs and what follows them: seenn2_compare reads the main-beta
    # policy from seenn2_train (it reruns, but resumes every unchanged policy from its
    # checkpoint); the engine stages read the main-beta policy; nothing before the policies
    engine = {"energy", "latency", "report_measurements"}
    assert planned_jobs(project) == policies | engine | REPORT_STAGES
    # `dvc status` names the stages whose own deps or params changed (the report reads the whole config)
    assert dvc_changed(project) == {"seenn2_train", "report"} | {st for st in CONVERTED_POLICY if "_train_" in st}
    # DVC compares content: the main-beta policy comes out byte-identical (resumed, same seed),
    # so the engine stages, which read only that policy, do not rerun
    out = sh(project, "dvc", "repro").stdout
    assert set(re.findall(r"Running stage '(\w+)'", out)) == policies | REPORT_STAGES


def test_two_clean_runs_are_byte_identical(project, tmp_path):
    other = make_project(tmp_path / "b", tiny_config())
    sh(other, "snakemake", "--cores", "2")
    a, b = output_bytes(project), output_bytes(other)
    assert sorted(a) == sorted(b)
    differing = [k for k in a if a[k] != b[k]]
    assert differing == []
    lock_a = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    lock_b = yaml.safe_load((other / "dvc.lock").read_text())["stages"]
    measured = {"latency", "teas_latency", "report_measurements"}
    assert {k: v for k, v in lock_a.items() if k not in measured} == {k: v for k, v in lock_b.items() if k not in measured}


# --- computed code inputs -------------------------------------------------------------------------

def _probe_stages():
    """One stage per stage function, plus the converted SNN's evaluation (it loads another model kind)."""
    from seenn.stages import STAGES

    seen, out = set(), []
    for st in STAGES:
        if st.func not in seen or st.name == "evaluate_converted":
            seen.add(st.func)
            out.append(st)
    return out


def test_every_module_a_stage_loads_is_among_its_code_inputs(project, tmp_path):
    """Run each stage in a fresh interpreter (in a copy of the finished tiny project) and list the
    `seenn` modules it loaded: every one must be a declared code input of the stage, or editing it
    would leave the stage's results stale."""
    import json
    import shutil
    import sys

    from seenn.dag import module_file

    cwd = scratch_copy(project, tmp_path / "probe")
    cfg = yaml.safe_load((cwd / "params.yaml").read_text())
    probe = Path(__file__).with_name("stage_probe.py")
    missing = {}
    for st in _probe_stages():
        # training stages resume from the copied final checkpoints: their modules load all the same
        # (every training module is imported before the epoch loop), and the probe stays quick
        job = {"name": st.name, "func": st.func, "config": cfg, "inputs": dict(st.inputs), "outputs": dict(st.outputs),
               "params": json.loads((cwd / st.params_file).read_text()), "checkpoint_dir": st.checkpoint_dir,
               "options": dict(st.options)}
        loaded = json.loads(sh(cwd, sys.executable, str(probe), json.dumps(job)).stdout.splitlines()[-1])
        lost = sorted({module_file(m) for m in loaded} - set(st.code_files()))
        if lost:
            missing[st.name] = lost
    assert missing == {}


def _edit(project: Path, rel: str):
    """Append a comment to a source file of the project; returns a function that restores it
    (content and modification time, so Snakemake sees nothing left to do)."""
    path = project / rel
    backup = path.with_name(path.name + ".orig")
    shutil.copy2(path, backup)
    path.write_text(path.read_text() + "\n# edited\n")

    def restore():
        shutil.copy2(backup, path)
        backup.unlink()

    return restore


def _all_stages() -> set[str]:
    from seenn.stages import STAGES

    return {st.name for st in STAGES}


REPORTS = {"tables", "figures", "report", "report_measurements"}
POLICY_STAGES = {"seenn2_train", "seenn2_evaluate", "seenn2_compare"} | CONVERTED_POLICY


@pytest.mark.parametrize("rel, direct, planned", [
    # the normalization constants (DatasetSpec.mean/std) feed every stage that builds a network input, and
    # every stage that reads a split or saved logits (the dataset registry loads on a split's spec)
    ("src/seenn/data/digits.py", lambda every: every - {"tables", "report", "report_measurements"}, lambda every: every),
    # the report reads only files: editing the tables' code reruns the report because its tables change
    ("src/seenn/report/tables.py", lambda every: {"tables"}, lambda every: {"tables", "report"}),
    # every TEAS stage counts operations with seenn.energy.OpCounter, and seenn.energy loads the engine and
    # the policy (its energy stage runs SEENN-II): the import closure takes them in
    ("src/seenn/models/policy.py", lambda every: POLICY_STAGES | {"energy", "latency"} | TEAS_STAGES,
     lambda every: POLICY_STAGES | {"energy", "latency"} | TEAS_STAGES | REPORTS),
])
def test_editing_a_source_file_reruns_exactly_the_stages_that_load_it(project, rel, direct, planned):
    """`dvc status` names the stages whose own code changed; a Snakemake dry run plans them and
    everything downstream of them."""
    every = _all_stages()
    restore = _edit(project, rel)
    try:
        assert dvc_changed(project) == direct(every)
        assert planned_jobs(project) == planned(every)
    finally:
        restore()
    assert planned_jobs(project) == set()
    assert dvc_changed(project) == set()


def test_teas_stages_run_under_dvc_repro_to_the_bytes_snakemake_wrote(project):
    """TEAS through DVC's front door: forced, `dvc repro` runs each TEAS stage function (the measured
    latency aside; the first stage of each, as the module probe, and the converted SNN's evaluation,
    which loads another model kind) and rewrites exactly the bytes Snakemake wrote, and DVC then
    has nothing to do (Snakemake, which goes by modification times, would rerun what reads them:
    the last test of the module)."""
    names = sorted({st.name for st in _probe_stages() if st.name in TEAS_STAGES - {"teas_latency"}}
                   | {"teas_evaluate_converted"})
    assert len(names) == 5, names
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    files = [path for n in names for out in stages[n]["outs"] for path in out]
    before = {p: (project / p).read_bytes() for p in files}
    out = sh(project, "dvc", "repro", "--force", "--single-item", *names).stdout
    assert all(f"Running stage '{n}'" in out for n in names), out
    assert {p: (project / p).read_bytes() for p in files} == before
    assert dvc_changed(project) == set()
