"""The report's research chapters: summary, data and models, SEENN-I, SEENN-II and conversion;
each one function that reads the run's files (`Run`) and writes into the Document."""

from __future__ import annotations

import pandas as pd

from seenn.methods.catalog import BRANCH_LABELS, QCFS_ANN, RMP_ANN, fixed_label
from seenn.methods.metrics import doubling_timesteps
from seenn.report import notes
from seenn.report.document import SMALL, Document, text
from seenn.report.findings import findings
from seenn.report.guarantee import price_sentence
from seenn.report.headline import ENERGY_BRANCH
from seenn.report.rules import front_sentence
from seenn.report.run import MEASUREMENTS_PDF, Run
from seenn.report.accuracy import accuracy_at


def summary(run: Run, doc: Document) -> None:
    """Findings first: sentences from the numbers, the headline table, the accuracy-vs-cost figure."""
    doc.section("summary")
    doc.para("Findings (computed from this run's numbers):", style=SMALL)
    price = price_sentence(run.csv("guarantee_csv"), ENERGY_BRANCH) if run.has("guarantee_csv") else None
    front = (front_sentence(run.csv("rules_front_csv"), BRANCH_LABELS[ENERGY_BRANCH]) if run.has("rules_front_csv")
             else None)
    doc.bullets(findings(run.headline, ENERGY_BRANCH) + [s for s in (price, front) if s])
    refs = [(k, label) for k, label in (("seenn1", "SEENN-I"), ("guarantee", "guarantee"), ("rules", "exit rules"),
                                        ("seenn2", "SEENN-II"),
                                        ("conversion", "conversion"),
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
            *([("maximum timesteps T (direct, fine-tuned)", str(p["train"]["timesteps"])),
               ("training epochs (direct SNN)", str(p["train"]["epochs"])),
               ("fine-tuning epochs", str(p["finetune"]["epochs"]))] if run.has("metrics_direct") else [])]
    if run.has("metrics_converted") and p["conversion"].get("method") == "rmp":
        rows += [("maximum timesteps T (converted)", str(p["conversion"]["max_timesteps"])),
                 ("conversion", f"RMP stand-in: ReLU ANN, thresholds at the {p['conversion']['percentile']:g}th percentile")]
    elif run.has("metrics_converted"):
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


def _sweep_view(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str], dict]:
    """The SEENN-II sweep with SEENN-I at the same validation cost, one column per score's rule."""
    scores = [c.removesuffix(" test acc") for c in df.columns if c.endswith(" test acc")]
    out = df.rename(columns={"SEENN-II minus SEENN-I (pts)": "seenn2_minus_seenn1"})
    cols = ["model", "beta", "variant", "val_avg_timesteps", "test_accuracy", "avg_timesteps"]
    names = {"test_accuracy": "SEENN-II test acc. (%)", "avg_timesteps": "SEENN-II avg. timesteps"}
    for s in scores:
        out[f"{s}_acc"], out[f"{s}_t"] = df[f"{s} test acc"], df[f"{s} avg t"]
        cols += [f"{s}_acc", f"{s}_t"]
        names[f"{s}_acc"], names[f"{s}_t"] = f"{s} acc. (%)", f"{s} avg. timesteps"
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


def conversion(run: Run, doc: Document) -> None:
    doc.section("conversion")
    ann, metrics = run.json("ann_metrics"), run.json("metrics_converted")
    T = metrics["test"]["timesteps"]
    final = accuracy_at(metrics["test"])[T]
    what = f"{QCFS_ANN} (L = {ann['levels']})" if ann.get("method") != "rmp" else RMP_ANN
    exits = run.has("seenn1_converted")  # not teas.only: the exit rules ran on the converted SNN
    doc.para(f"A {what} reaches {ann['test']['accuracy']:.2f} % on the test split; converted to "
             f"integrate-and-fire neurons it reaches {final:.2f} % at T = {T} "
             f"({final - ann['test']['accuracy']:+.2f} points). "
             + (f"SEENN-I divides the logits by temperature {run.json('seenn1_converted')['temperature']:g} "
                "(conversion.seenn1_temperature). " if exits else "")
             + f"The method is in {doc.ref('notes')}.", markup=True)
    conv = run.csv("conversion_csv")
    doc.table(conv, f"The {'QCFS' if ann.get('method') != 'rmp' else 'ReLU'} ANN beside its converted SNN at T = 1, 2, 4, "
              "…: accuracy and the gap to the ANN." if "kept_timesteps" not in metrics["test"] else
              "The ANN beside its converted SNN at the kept timesteps (conversion.keep_timesteps): accuracy and the gap.",
              columns=["model", "T", "val_accuracy", "test_accuracy", "test_gap_to_ann"])
    if not exits:
        doc.figure(run.inputs["conversion"], "Converted SNN accuracy at each kept T (log axis) against its ANN's "
                   "(dashed, band ± 1 point).", width=0.8)
        doc.figure(run.inputs["training_ann"], "Loss and accuracy per epoch of the ANN training.", width=0.85)
        return
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
