"""The PDF report: provenance, method notes, tables and figures, in one deterministic file.

matplotlib's PdfPages with CreationDate removed gives byte-identical PDFs for identical inputs."""

from __future__ import annotations

import subprocess
import textwrap
from importlib import metadata

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from ..config import SOURCE_KEY, config_digest, edited_by_hand  # noqa: E402
from ..io import atomic_path, read_json  # noqa: E402
from ..runtime import cpu_kernels_description, cpu_model  # noqa: E402
from ..methods import ANN, BRANCH_LABELS, POLICY_ALONE, QCFS_ANN, fixed_label, seenn1_label  # noqa: E402
from ..metrics import doubling_timesteps  # noqa: E402

A4 = (8.27, 11.69)
PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "snakemake", "dvc", "seenn-bench")

METHOD_NOTES = """\
Accuracy at fixed T uses the accumulated logits z_t = O_1 + ... + O_t (argmax). AET (paper Eq. 4)
assumes a prediction that is correct at t stays correct; the empirical AET (Eq. 13) averages, per
sample, the first timestep that is actually correct (T if never). SEENN-I exits at the first t whose
score of softmax(z_t / temperature) exceeds alpha (strictly), else at T; scores are the top
confidence and 1 - normalized entropy. The temperature divides z_t for the confidence score only,
as in the authors' code, unless seenn1.entropy_temperature also applies it to the entropy score.
Unlike the authors (fixed alpha = 0.9, shuffled test set),
alpha is calibrated here on the validation split: the alpha with the fewest average timesteps whose
validation accuracy is within the configured tolerance of full-T accuracy. The test split is only
reported. The oracle stops each sample at its first correct timestep: the limit for any exit rule.
Spikes at exact ties: the LIF neuron fires when u - threshold > 0 (strictly, as the SPEC), the IF
neuron of the converted SNN when u >= threshold (as QCFS); the authors' tanh-surrogate LIF fires at
u - threshold >= 0. The rules differ only when a membrane lands exactly on the threshold."""


AUTHORS_PROTOCOL_NOTES = """\
Data protocol 'authors' (data.protocol), as the SEENN authors' code: the networks train on all
training images (the project's val split merged into train) and every selection that the project
makes on a validation split (SEENN-I's alpha, SEENN-II's rule and tradeoff points, the validation
columns) is made on the test split (val = test), so the test figures are not held out. CIFAR-10 is
normalized with std (0.2023, 0.1994, 0.2010) instead of (0.2470, 0.2435, 0.2616); with
autoaugment_cutout, AutoAugment fills with 128 and Cutout cuts a black (0) hole before
normalization instead of a mean-pixel hole after it."""


def method_notes(p: dict) -> str:
    """The method notes; the protocol's differences are added only when it is not the default."""
    if p.get("data", {}).get("protocol", "project") == "authors":
        return METHOD_NOTES + "\n\n" + AUTHORS_PROTOCOL_NOTES
    return METHOD_NOTES


CODE_PATHS = ["src", "workflow", "config", "params.yaml", "Snakefile", "pyproject.toml"]


def git_commit() -> str:
    """The last commit that changed the code or the config (not HEAD: a later commit of dvc.lock
    or the README must not change the report's bytes), flagged when those files are modified."""
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", *CODE_PATHS], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE_PATHS],
                               capture_output=True, text=True, check=True).stdout.strip()
        return (commit or "none") + (" (with uncommitted changes to code or config)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def versions() -> str:
    out = []
    for pkg in PACKAGES:
        try:
            out.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg} (not installed)")
    return ", ".join(out)


def text_page(pdf: PdfPages, title: str, blocks: list[tuple[str, str]]) -> None:
    fig = plt.figure(figsize=A4)
    fig.text(0.07, 0.95, title, fontsize=16, weight="bold", va="top")
    y = 0.91
    for heading, body in blocks:
        fig.text(0.07, y, heading, fontsize=11, weight="bold", va="top")
        y -= 0.022
        lines = [w for para in body.splitlines() for w in (textwrap.wrap(para, 100) or [""])]
        fig.text(0.07, y, "\n".join(lines), fontsize=7.5, family="monospace", va="top")
        y -= 0.0125 * len(lines) + 0.02
    pdf.savefig(fig)
    plt.close(fig)


def table_page(pdf: PdfPages, tables: list[tuple[str, pd.DataFrame]], notes: str | None = None) -> None:
    fig = plt.figure(figsize=A4)
    y = 0.95
    for title, df in tables:
        fig.text(0.07, y, title, fontsize=11, weight="bold", va="top")
        y -= 0.02
        shown = df.copy()
        for col in shown.columns:
            if shown[col].dtype.kind == "f":
                shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}" if abs(v) < 1e-2 else f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}")
        h = 0.022 * (len(shown) + 1)
        ax = fig.add_axes([0.07, y - h, 0.86, h])
        ax.axis("off")
        tab = ax.table(cellText=shown.astype(str).values, colLabels=list(shown.columns), loc="upper left", cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(7)
        y -= h + 0.04
    if notes:
        fig.text(0.07, y, "\n".join(textwrap.wrap(notes, 110)), fontsize=8, va="top")
    pdf.savefig(fig)
    plt.close(fig)


def figure_page(pdf: PdfPages, title: str, png: str, caption: str) -> None:
    fig = plt.figure(figsize=A4)
    fig.text(0.07, 0.95, title, fontsize=13, weight="bold", va="top")
    img = mpimg.imread(png)
    h, w = img.shape[:2]
    width = 0.86
    height = min(0.8, width * (h / w) * A4[0] / A4[1])
    ax = fig.add_axes([0.07, 0.92 - height, width, height])
    ax.imshow(img, interpolation="lanczos")
    ax.axis("off")
    fig.text(0.07, 0.9 - height, "\n".join(textwrap.wrap(caption, 110)), fontsize=8, va="top")
    pdf.savefig(fig)
    plt.close(fig)


ENGINE_NOTES = """\
Network: every method runs the same SNN, the one the SEENN-II policy was trained for (the fine-tuned SNN when SEENN-II is in the DAG), with the SEENN-I thresholds calibrated for it.
Energy: additions and multiplications per inference, counted on the test split from the spikes the early-exit engine actually produces, per layer and per timestep run: one AC (0.9 pJ) per input spike per outgoing synapse for spike-driven layers, one MAC (4.6 + 0.9 pJ) per synapse for the encoding layer and non-spiking layers; the stem runs once per sample. The ANN is the same ResNet with ReLU in place of every neuron (dense MACs, T = 1); it reuses the SNN weights, so only its cost is shown, never its accuracy.
Latency: MEASURED wall-clock time on this machine, not deterministic (rerunning changes the figures). ms per sample is paper Eq. 14 (test inference time / number of test samples). Fixed T, SEENN-I and SEENN-II run on the stepwise engine, where samples that exit leave the batch with their neuron states and new samples take their places (continuous batching), so each call computes a full batch. Speedup: over fixed T at the largest T, the median of per-round ratios; ideal = T / average timesteps."""


def energy_page(pdf: PdfPages, energy_csv: str, energy_json: str) -> None:
    """Energy per inference, counted from real spikes (deterministic), and how it is counted."""
    df = pd.read_csv(energy_csv)
    df["method"] = df["method"].map(lambda m: SHORT_METHODS.get(m, m))
    df = df.rename(columns={"energy_uJ_authors_counting": "uJ authors'", "energy_vs_fixed_T1": "vs T=1",
                            "energy_vs_ANN": "vs ANN", "test_accuracy": "test acc", "avg_timesteps": "avg t"})
    table_page(pdf, [("Energy per inference, fine-tuned SNN (test split, counted from spikes)", df)])
    text_page(pdf, "How energy is counted", [("Conventions", read_json(energy_json)["conventions"])])


SHORT_METHODS = {seenn1_label("confidence"): "SEENN-I conf.", seenn1_label("entropy"): "SEENN-I entropy",
                 ANN: "ANN (ReLU)", POLICY_ALONE: "SEENN-II policy"}


def engine_page(pdf: PdfPages, inputs: dict) -> None:
    """Energy table (counted) and latency table (measured), with the measuring conditions."""
    lat = read_json(inputs["latency"])
    env = lat["environment"]
    conditions = (f"Measured on {env['device']} ({env['cpu']}, {env['cpu_count']} cores), {env['torch_threads']} torch "
                  f"thread(s), fused LIF {'on' if env['fused_lif'] else 'off'}, torch {env['torch']}; median of "
                  f"the timed rounds; 1-min load average {env['load_average_1min_start']:.1f} at start, "
                  f"{env['load_average_1min_end']:.1f} at end (other jobs sharing the machine slow every method).")
    lines = []
    for s in lat["summary"]:
        parts = [f"batch {s['batch_size']}: one SNN timestep / one ANN forward {s['snn_t1_over_ann']:.2f}x at T=1"]
        if "snn_later_timestep_over_ann" in s:
            parts.append(f"{s['snn_later_timestep_over_ann']:.2f}x for a later timestep")
        parts += [f"{k} speedup {v['speedup']:.2f}x vs ideal {v['ideal']:.2f}x ({100 * v['fraction_of_ideal']:.0f} %; "
                  f"CPU time {100 * v['cpu_fraction_of_ideal']:.0f} %)" for k, v in s["early_exit"].items()]
        lines.append("; ".join(parts))
    text_page(pdf, "Early-exit engine: energy and measured latency", [
        ("How these figures are made", ENGINE_NOTES), ("Measuring conditions", conditions),
        ("Summary (measured)", "\n".join(lines))])
    tables = [pd.read_csv(inputs["energy_csv"]), pd.read_csv(inputs["latency_csv"])]
    for df in tables:
        df["method"] = df["method"].map(lambda m: SHORT_METHODS.get(m, m))
    table_page(pdf, [("Energy per inference (test split, counted from spikes)", tables[0]),
                     ("Latency (MEASURED; ms per sample = paper Eq. 14)", tables[1])])


# --- conversion branch (QCFS ANN -> IF SNN) ---------------------------------------------------

CONVERSION_NOTES = """\
The conversion branch trains an ANN with the configured ResNet and a QCFS activation in every
activation slot: h(x) = lambda * clip(floor(x * L / lambda + 0.5) / L, 0, 1), L levels, one
trainable lambda per layer, floor with a straight-through gradient (Bu et al., ICLR 2022).
Conversion replaces each QCFS activation by an integrate-and-fire neuron with threshold lambda,
reset by subtraction and membrane starting at lambda / 2; BatchNorm is kept as the affine map of its
running statistics, average pooling only (max-pooling is refused). The analog image enters at every
timestep and the outputs are summed: z_t = O_1 + ... + O_t, so z_t / t approaches the ANN's logits
as t grows. The converted SNN then goes through the same evaluation, AET and SEENN-I code as the
direct SNN, with one difference: SEENN-I divides z_t by conversion.seenn1_temperature instead of
seenn1.temperature (the authors use 8 for converted SNNs). A converted SNN that needs many steps to
converge piles up large summed logits while still wrong, and a temperature of 1 then lets the top
confidence pass every alpha of the sweep (on the default digits config, a temperature of 1 exits
most samples in the first steps at every alpha, with accuracy far below the ANN's; 8 does not).
SEENN-II on the converted SNN uses the same policy code as on the fine-tuned direct SNN; with up to
64 actions the paper's reward 2^-(u-1) is almost nothing past u = 10, so the branch also trains a
powers-of-two action grid and a linear reward, and reports the rule picked on the validation split.
As T grows, the IF rates approach clip(x, 0, lambda) rather than the L-level QCFS value, so the
converted SNN approaches the ANN only if L is not too coarse; its first timesteps are noisy (spikes
fired early are never taken back), which is where SEENN-I has to wait."""
CONVERSION_NOTES = " ".join(CONVERSION_NOTES.split())  # one paragraph: text_page wraps it


def conversion_blocks(ann: dict, metrics: dict, seenn1: dict, seenn2: dict | None = None) -> list[tuple[str, str]]:
    """Text summary of the conversion branch: ANN vs converted SNN, and SEENN-I on it."""
    T = metrics["test"]["timesteps"]
    acc = metrics["test"]["accuracy_per_t"]
    lams = ", ".join(f"{k} {v:.3f}" for k, v in ann["thresholds"].items())
    lines = [f"{QCFS_ANN} (L={ann['levels']}): test {ann['test']['accuracy']:.2f} %, val {ann['val']['accuracy']:.2f} %",
             f"{BRANCH_LABELS['converted']}: test " + ", ".join(f"T={t} {acc[t - 1]:.2f} %" for t in doubling_timesteps(T)),
             f"gap to the ANN at T={T}: {acc[-1] - ann['test']['accuracy']:+.2f} points",
             f"AET {metrics['test']['aet']:.3f}, empirical AET {metrics['test']['empirical_aet']:.3f} (test, T max {T})"]
    for score, r in seenn1["scores"].items():
        lines.append(f"SEENN-I ({score}, alpha {r['alpha']:.6g}): test {r['test_accuracy']:.2f} % at "
                     f"{r['test_avg_timesteps']:.3f} average timesteps ({T / r['test_avg_timesteps']:.1f}x fewer than T={T})")
    if seenn2 is not None:
        lines.append(f"SEENN-II ({seenn2['estimator']}, beta {seenn2['beta']:g}, policy trained on the {seenn2['train_split']} "
                     f"split): test {seenn2['test_accuracy']:.2f} % at {seenn2['test_avg_timesteps']:.3f} average timesteps; "
                     f"policy = {seenn2['ops']['policy_share_of_one_timestep_percent']:.2f} % of one SNN timestep (dense MACs)")
    lines.append(f"SEENN-I softmax temperature {seenn1['temperature']:g} (conversion.seenn1_temperature), "
                 f"accumulation '{seenn1['accumulate']}'")
    lines.append(f"learned thresholds lambda: {lams}")
    return [("Results", "\n".join(lines)), ("Method", CONVERSION_NOTES)]


def conversion_pages(pdf: PdfPages, i: dict) -> None:
    """The report's conversion section: summary, tables restricted to the converted SNN (fixed T
    at powers of two), accuracy vs T against the ANN, SEENN-I trade-off, ANN training."""
    ann, metrics, seenn1 = read_json(i["ann_metrics"]), read_json(i["metrics_converted"]), read_json(i["seenn1_converted"])
    seenn2 = read_json(i["seenn2_result_converted"]) if "seenn2_result_converted" in i else None
    text_page(pdf, "ANN-to-SNN conversion (QCFS)", conversion_blocks(ann, metrics, seenn1, seenn2))
    label = BRANCH_LABELS["converted"]
    shown_t = {fixed_label(t) for t in doubling_timesteps(metrics["test"]["timesteps"])}
    methods = pd.read_csv(i["methods_csv"])
    methods = methods[(methods["model"] == label) & (~methods["method"].isin({fixed_label(t) for t in range(1, metrics["test"]["timesteps"] + 1)}) | methods["method"].isin(shown_t))]
    aet = pd.read_csv(i["aet_csv"])
    conv = pd.read_csv(i["conversion_csv"])
    conv["T"] = conv["T"].map(lambda v: "" if pd.isna(v) else str(int(v)))  # the ANN row has no T
    table_page(pdf, [
        ("QCFS ANN vs converted SNN: accuracy at T (%)", conv),
        ("AET vs empirical AET (test)", aet[aet["model"] == label]),
        ("Converted SNN: fixed T vs SEENN-I/II vs oracle (test)", methods.reset_index(drop=True)),
        ("Converted SNN: SEENN-II training rules at the main beta (chosen: picked on validation)",
         pd.read_csv(i["seenn2_variants_csv"]).drop(columns=["model"])),
    ])
    figure_page(pdf, "Converted SNN: accuracy vs T", i["conversion"],
                "Accuracy of the converted SNN at each number of timesteps T (accumulated logits z_T), against the QCFS "
                "ANN's test accuracy (dashed line, band +/- 1 point).")
    figure_page(pdf, "Converted SNN: accuracy vs average timesteps", i["tradeoff_converted"],
                "SEENN-I on the converted SNN as alpha sweeps the configured range, beside the fixed-T accuracies; stars "
                "mark the alphas calibrated on the validation split; red: SEENN-II, one policy per beta; dotted line: the QCFS ANN.")
    figure_page(pdf, "QCFS ANN training", i["training_ann"], "Loss and accuracy per epoch of the QCFS ANN training (validation at T = 1).")


def config_source_lines(p: dict) -> list[str]:
    """Which defaults and overlay `seenn config use` wrote params.yaml from (recorded in it), and
    whether its values were edited by hand since: their digest against the one it recorded."""
    src = p[SOURCE_KEY]
    overlay = f"overlay {src['overlay']} (sha256 {src['overlay_sha256'][:16]})" if src["overlay"] else "no overlay"
    lines = [f"config: `seenn config use` from {src['defaults']} (sha256 {src['defaults_sha256'][:16]}), {overlay}"]
    if edited_by_hand(p):
        lines.append(f"params.yaml EDITED BY HAND since: its values hash to {config_digest(p)[:16]}, "
                     f"not the recorded {src['params_sha256'][:16]}")
    else:
        lines.append(f"params.yaml not edited since (values sha256 {src['params_sha256'][:16]}, as recorded)")
    return lines


def provenance(p: dict, manifest: dict, metrics: dict) -> str:
    """Where the results come from: code, config, data, seeds, device, the CPU and its kernels, packages."""
    splits = ", ".join(f"{s} {v['n']}" for s, v in manifest["splits"].items())
    return "\n".join([
        f"last commit of code or config: {git_commit()}",
        *config_source_lines(p),
        f"dataset: {manifest['dataset']} ({splits}); split seed {manifest['seed']}; source: {manifest['source']}",
        f"split sha256: " + ", ".join(f"{s} {v['sha256'][:16]}" for s, v in manifest["splits"].items()),
        f"device: {metrics['device']}; seed {p['seed']}; deterministic algorithms: {p['deterministic']}; TF32: {p['tf32']}; "
        f"mixed precision (training): {p['amp']}",
        *([f"seeds: {', '.join(map(str, p['seeds']))} (each other than {p['seed']} a training run of its own on the "
           f"same data split; the across-seeds page)"] if p.get("seeds") else []),
        f"CPU (of the report stage): {cpu_model()}; CPU kernels: {cpu_kernels_description(p['cpu_kernels'])}",
        f"packages: {versions()}",
    ])


def stage_report(ctx) -> None:
    p, i = ctx.params, ctx.inputs
    provenance_text = provenance(p, read_json(i["manifest"]), read_json(i["metrics_direct"]))
    with atomic_path(ctx.outputs["pdf"]) as tmp:
        with PdfPages(tmp, metadata={"CreationDate": None, "ModDate": None, "Producer": "seenn-bench",
                                     "Creator": "seenn-bench", "Title": p["report"]["title"]}) as pdf:
            text_page(pdf, p["report"]["title"], [
                ("Provenance", provenance_text),
                ("Method notes", method_notes(p)),
                ("Configuration (params.yaml)", yaml.safe_dump({k: v for k, v in p.items() if k != SOURCE_KEY},
                                                               sort_keys=False, width=100)),
            ])
            if "paper_comparison_csv" in i:
                paper_page(pdf, i, p)
            shown = {BRANCH_LABELS["direct"], BRANCH_LABELS["finetuned"]}  # the converted SNN has its own section
            table_page(pdf, [(title, df[df["model"].isin(shown)].reset_index(drop=True)) for title, df in (
                ("Accuracy at fixed T (%)", pd.read_csv(i["accuracy_per_t_csv"])),
                ("AET vs empirical AET (test; paper Table 5 analogue)", pd.read_csv(i["aet_csv"])),
                ("Fixed T vs SEENN-I vs SEENN-II vs oracle (test)", pd.read_csv(i["methods_csv"])),
            )])
            if "seeds_csv" in i:
                seeds_page(pdf, i["seeds_csv"])
            figure_page(pdf, "Accuracy vs average timesteps", i["tradeoff"],
                        "SEENN-I test accuracy as alpha sweeps from the configured minimum to maximum, beside the fixed-T "
                        "accuracies; stars mark the alphas calibrated on the validation split.")
            figure_page(pdf, "Exit timesteps", i["exit_histogram"], "Number of test samples leaving at each timestep under SEENN-I at the calibrated alpha.")
            figure_page(pdf, "Confidence per timestep", i["confidence"],
                        "Distribution of the top softmax confidence of the accumulated logits at each t, split by whether the prediction is correct (log scale).")
            figure_page(pdf, "Training", i["training"], "Loss and accuracy per epoch of the direct SNN training.")
            seenn2_pages(pdf, i, p)
            if "metrics_converted" in i:
                conversion_pages(pdf, i)
            else:
                text_page(pdf, "ANN-to-SNN conversion (QCFS)", [("Not run", CONVERSION_OFF)])
            if "teas_csv" in i:  # teas.enabled
                from . import teas_pages

                teas_pages.pages(pdf, i, text_page, table_page, figure_page)
            energy_page(pdf, i["energy_csv"], i["energy"])
            text_page(pdf, "Measured latency", [("Where", "Wall-clock latency and throughput are measurements, not "
                      "deterministic results: they are in reports/seenn_measurements.pdf (stage report_measurements).")])


CONVERSION_OFF = ("The conversion branch (QCFS ANN training, conversion to an IF SNN, its evaluation, SEENN-I and "
                  "SEENN-II) was switched off by config (conversion.enabled: false): the DAG omitted it, and no table "
                  "or figure of this report holds a converted SNN.")
SEEDS_NOTE = ("Each seed in `seeds` other than `seed` reran the training-to-evaluation stages of every branch "
              "(results/seeds/<s>/) with that seed; every run trains and evaluates on the data split of the main "
              "seed, so only the training randomness varies. std: sample standard deviation (ddof 1). Energy, latency, "
              "the figures and every other page are of the main run (seed {seed}).")


def seeds_page(pdf: PdfPages, seeds_csv: str) -> None:
    """Mean, standard deviation and n over the seeds' runs, per SNN, method and quantity."""
    df = pd.read_csv(seeds_csv)
    seeds = str(df["seeds"].iloc[0])
    df = df.drop(columns=["seeds"])
    df["method"] = df["method"].map(lambda m: SHORT_METHODS.get(m, m))
    table_page(pdf, [(f"Across seeds ({seeds}): test split, mean / std / n", df)],
               notes=SEEDS_NOTE.format(seed=seeds.split(",")[0]))


def paper_page(pdf: PdfPages, i: dict, p: dict) -> None:
    """The paper's reported numbers (config/paper/numbers.yaml, row report.paper_row) beside this run's."""
    row_id = p["report"]["paper_row"]
    row = yaml.safe_load(open(i["paper_numbers"], encoding="utf-8"))[row_id]
    df = pd.read_csv(i["paper_comparison_csv"], dtype={"paper": str})

    def this_run(v, std, n):
        return "not run" if n == 0 else f"{v:.4f}" + (f" ± {std:.4f} (n={n})" if n > 1 else "")

    view = pd.DataFrame({"metric": df["metric"], "SNN (this run)": df["snn"], "paper": df["paper"],
                         "this run": [this_run(v, s, n) for v, s, n in zip(df["this_run"], df["this_run_std"], df["n"])],
                         "this run - paper": ["" if pd.isna(d) else f"{d:+.4f}" for d in df["difference"]]})
    table_page(pdf, [(f"Paper vs this run: {row.get('title', row_id)}", view)],
               notes=(f"Paper row {row_id} of config/paper/numbers.yaml; source: {row.get('source', '')}; the paper's "
                      f"max T: {row.get('max_timesteps')}. 'not given in the texts': the paper texts do not report that "
                      "figure (never guessed). The paper's fixed-T, SEENN-I and Table 5 (AET) figures are of the directly "
                      "trained SNN, SEENN-II of the fine-tuned one; this run's figures come from the same branches."))


def stage_measurements_report(ctx) -> None:
    """Stage report_measurements: energy (counted) and latency (measured) in a PDF of their own."""
    with atomic_path(ctx.outputs["pdf"]) as tmp:
        with PdfPages(tmp, metadata={"CreationDate": None, "ModDate": None, "Producer": "seenn-bench",
                                     "Creator": "seenn-bench",
                                     "Title": ctx.params["report"]["title"] + " - measurements"}) as pdf:
            engine_page(pdf, ctx.inputs)
            if "teas_latency_csv" in ctx.inputs:  # teas.enabled
                from . import teas_pages

                teas_pages.latency_page(pdf, ctx.inputs["teas_latency_csv"], table_page)


# --- SEENN-II (fine-tuned SNN + policy network) ----------------------------------------------

METHOD_NOTES_SEENN2 = """\
Fine-tuning: the direct SNN is trained further with the configured fine-tuning loss (default
'cumulative': mean over t of CE(z_t / t, y)), so that every prefix of the accumulated output predicts
well; fixed T, SEENN-I (recalibrated on validation), SEENN-II and the oracle are then reported for the
fine-tuned checkpoint beside the direct one.
Policy: a ReLU ResNet-8 (conv3x3 stem, one basic block per stage, global pooling, FC to one logit per
action) reads the normalized input and gives pi(u|x) over the actions. The paper's Table 6 policy is
16 / 16-32-64 with a stride-1 stem (the paper configs); the default digits config uses the narrower
policy its seenn2 keys name (widths and stem stride), because Table 6's would cost as much as a whole
timestep of this small SNN; the comparison table gives what the Table 6 policy reaches instead.
Reward: R(u) = reward_base^-(u-1) if the SNN's accumulated prediction is correct at u, else -beta
(the authors'); correctness comes from the saved per-timestep logits of the policy's training split
(the SNN is not rerun). 'expected' maximizes the exact expected reward sum_u pi(u|x) R(u) (authors'
code); 'reinforce' samples u ~ pi and follows (R(u) - b) * grad log pi(u|x) with b the mean reward of
the other samples of the batch (leave-one-out, the paper's reinforcement-learning description).
Optional per-sample weighting (authors' code): r/(1-r) for samples wrong at t = 1, r = accuracy at
t = 1 on that split (its value on each SNN is stated below). SGD with the configured momentum (the
authors' ee_ii_train has none), cosine schedule, seeded sampling and batch order.
Training rules for a long T: besides the paper's rule (every u in 1..T, exponential reward) a branch can
train an action grid of 1, 2, 4, ..., T and a linear reward R(u) = 1 - (u-1)/T; each rule is a stage,
and the one reported is picked on the validation split by SEENN-I's calibration rule (fewest
timesteps within the tolerance of full-T accuracy, else the most accurate).
Test: u = argmax pi(u|x); the sample is correct if the SNN is correct at u; average timesteps = mean u.
One policy per beta gives SEENN-II's tradeoff curve. SEENN-I beside it is chosen on validation only:
its alpha is interpolated on the validation sweep where SEENN-I's average timesteps equal SEENN-II's
validation average timesteps, and that alpha's test accuracy and timesteps are reported (picking
SEENN-I's alpha on the test split would favour it). On a 1,000-image test split one sample is 0.1 point.
The comparison at the main beta puts beside the configured policy the other estimator (same split and
weighting), the configured estimator on the other training-split / weighting choices (same epochs),
and the Table 6 policy when the configured one differs.
Operations: dense MACs of every conv / linear layer, counted with forward hooks on the real models
(spike sparsity ignored, as in the paper's 0.547 % for ResNet-8 vs ResNet-19)."""


def _sweep_view(df: pd.DataFrame) -> pd.DataFrame:
    """The SEENN-II sweep table with column names short enough for a page."""
    cols = {"model": "SNN", "beta": "beta", "variant": "rule", "val_avg_timesteps": "val avg t", "test_accuracy": "test acc",
            "avg_timesteps": "avg t", "SEENN-I (confidence) test acc": "I-conf acc", "SEENN-I (confidence) avg t": "I-conf t",
            "SEENN-I (entropy) test acc": "I-ent acc", "SEENN-I (entropy) avg t": "I-ent t",
            "SEENN-II minus SEENN-I (pts)": "diff (pts)"}
    return df[[c for c in cols if c in df.columns]].rename(columns=cols)


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


def _compare_view(df: pd.DataFrame) -> pd.DataFrame:
    """The comparison table, compact: exits per timestep in one column."""
    exits = [c for c in df.columns if c.startswith("exit_t")]
    out = pd.DataFrame({"estimator": df["estimator"], "split": df["train_split"], "policy": df["policy_arch"],
                        "weighted": df["sample_weighting"].astype(bool).map({True: "yes", False: "no"}),
                        "SNN acc t=1*": df["SNN acc t=1, policy split"],
                        "SEENN-II acc*": df["SEENN-II acc, policy split"],
                        "mean u*": df["mean u, policy split"], "test acc": df["test_accuracy"],
                        "test avg t": df["test_avg_timesteps"],
                        "exits t=1..T": df[exits].astype(int).astype(str).agg("/".join, axis=1)})
    return out


def seenn2_pages(pdf: PdfPages, i: dict, p: dict) -> None:
    """Method notes, tables and figures of SEENN-II and the fine-tuned SNN."""
    s = p["seenn2"]
    weighting = [weighting_text(BRANCH_LABELS["finetuned"], read_json(i["seenn2_result"]))]
    if "seenn2_result_converted" in i:
        weighting.append(weighting_text(BRANCH_LABELS["converted"], read_json(i["seenn2_result_converted"])))
    text_page(pdf, "SEENN-II: fine-tuning and the policy network", [("Method notes", METHOD_NOTES_SEENN2),
                                                                     ("Sample weighting on each SNN", "\n".join(weighting))])
    table_page(pdf, [
        (f"SEENN-II over beta ({s['estimator']}, {s['train_split']} split, weighting {'on' if s['sample_weighting'] else 'off'})"
         " vs SEENN-I (I-) on the test split", _sweep_view(pd.read_csv(i["seenn2_sweep_csv"]))),
        (f"SEENN-II at beta={s['beta']:g}: estimator, split, weighting (* on the policy's own split)",
         _compare_view(pd.read_csv(i["seenn2_compare_csv"]))),
        ("Cost of the policy network (dense MACs of conv + linear layers)", pd.read_csv(i["seenn2_ops_csv"])),
    ])
    figure_page(pdf, "SEENN-II vs SEENN-I", i["tradeoff_seenn2"],
                "Test accuracy vs average timesteps on the fine-tuned SNN: SEENN-I over alpha, SEENN-II over beta (labels), "
                "the estimator / training-split comparison at the main beta (open markers: unweighted, filled: weighted), "
                "fixed T and the oracle. Dotted grey: SEENN-I on the direct SNN before fine-tuning.")
    figure_page(pdf, "Policy training", i["policy_training"],
                "Per epoch, on the policy's training split with u = argmax pi: mean reward, mean u and accuracy, for each beta.")
    figure_page(pdf, "Estimators and training splits", i["policy_compare"],
                "The same curves for the comparison grid at the main beta: expected reward vs REINFORCE, held-out (val) vs "
                "train split, with and without the authors' per-sample weighting.")
    figure_page(pdf, "Fine-tuning", i["training_finetune"], "Loss and accuracy per epoch of the early-exit-aware fine-tuning.")


# the report prints the whole config, in this order, and the record of where params.yaml came from
# (SOURCE_KEY): only the report reads that record, so regenerating params.yaml from edited defaults or
# overlay comments reruns the report alone
ALL_KEYS = ("seed", "seeds", "device", "deterministic", "tf32", "amp", "cpu_kernels", "data", "loader", "model", "neuron", "train", "evaluate", "seenn1",
            "figures", "report", "engine", "conversion", "finetune", "seenn2", "teas", SOURCE_KEY)


def declare(tables, figures, energy, latency, conversion: bool = True, teas_latency: str | None = None) -> list:
    """The report (deterministic) and the measurements report (wall-clock figures get a PDF of their
    own, so the main report stays byte-identical on rerun). The report reads the conversion branch's
    files only when it is in the DAG, and the paper numbers when the tables compare with them."""
    from ..dag import PREPARED, Stage, branch_dir, conversion_inputs

    engine = {"energy_csv": energy.outputs["table_csv"], "energy": energy.outputs["energy"]}
    paper = {"paper_numbers": tables.inputs["paper_numbers"]} if "paper_numbers" in tables.inputs else {}
    return [
        Stage(name="report", run=stage_report, desc="the PDF report with provenance, tables and figures",
              params=ALL_KEYS,
              inputs={**tables.outputs, **figures.outputs, "manifest": f"{PREPARED}/manifest.json",
                      "metrics_direct": f"{branch_dir('direct')}/metrics.json",
                      **(conversion_inputs() if conversion else {}), **engine,
                      "seenn2_result": f"{branch_dir('seenn2')}/seenn2.json", **paper},
              outputs={"pdf": "reports/seenn_report.pdf"}),
        Stage(name="report_measurements", run=stage_measurements_report,
              desc="the PDF of measured latency and throughput (not deterministic), beside the counted energy",
              params=("report.title",),
              inputs={**engine, "latency_csv": latency.outputs["table_csv"], "latency": latency.outputs["latency"],
                      **({"teas_latency_csv": teas_latency} if teas_latency else {})},
              outputs={"pdf": "reports/seenn_measurements.pdf"}),
    ]
