"""The measurements PDF (stage report_measurements): measured latency, the speedup of each
early-exit method beside the paper's ideal T / avg T and the bound reachable on this machine, and
the counted energy. Wall-clock figures: not deterministic, kept out of the main report."""

from __future__ import annotations

import pandas as pd

from seenn.common.io import read_json
from seenn.report import notes
from seenn.report.document import SMALL, Document


def conditions(env: dict) -> str:
    gpu = f"{env['gpu']}, host " if env.get("gpu") else ""
    precision = env.get("precision", "fp32")
    return (f"Measured on {env['device']} ({gpu}{env['cpu']}, {env['cpu_count']} cores), {env['torch_threads']} torch "
            f"thread(s), in {precision} (engine.precision), fused LIF {'on' if env['fused_lif'] else 'off'}, torch "
            f"{env['torch']}; median of the timed "
            f"rounds; 1-minute load average {env['load_average_1min_start']:.1f} at the start, "
            f"{env['load_average_1min_end']:.1f} at the end (other jobs sharing the machine slow every method).")


def speedup_table(summary: list[dict]) -> pd.DataFrame:
    """Per batch size and early-exit method: measured speedup over the best fixed T, the paper's
    ideal, the reachable bound and the fraction of it reached."""
    return pd.DataFrame([{"batch": s["batch_size"], "method": name, "speedup": v["speedup"], "ideal": v["ideal"],
                          "reachable": v["reachable"], "of_reachable": v.get("of_reachable")}
                         for s in summary for name, v in s["early_exit"].items()])


def fixed_table(summary: list[dict]) -> pd.DataFrame:
    """Per batch size: which fixed-T path was faster at T (the yardstick), its t(1) and t(T) in ms
    per sample, and the SNN's first timestep over one ANN forward on it and on the engine."""
    return pd.DataFrame([{"batch": s["batch_size"], "best_fixed_path": s.get("best_fixed_path", "engine"),
                          "t1_ms": s.get("best_fixed_t1_ms"), "tT_ms": s.get("best_fixed_tT_ms"),
                          "t1_over_ann": s["snn_t1_over_ann"], "engine_t1_over_ann": s.get("engine_t1_over_ann")}
                         for s in summary])


def rule_latency(latency: pd.DataFrame) -> pd.DataFrame:
    """One row per method, one speedup column per batch size (the latency table, wide; printed
    with two decimals, blank where a method has no speedup, as the ANN)."""
    wide = latency.pivot_table(index="method", columns="batch", values="speedup", sort=False, dropna=False)
    wide = wide.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    wide.columns = [f"batch {b}" for b in wide.columns]
    return wide.reset_index()


def write(inputs: dict, title: str, path: str) -> Document:
    lat = read_json(inputs["latency"])
    T = lat["timesteps"]
    teas = "teas_latency_csv" in inputs
    doc = Document(title, [("latency", "Measured latency and speedup"), ("energy", "Energy per inference (counted)")]
                   + ([("teas", "TEAS: layer-major latency")] if teas else []))
    doc.title_block("Wall-clock measurements of this run: they change from run to run and machine to machine.")
    doc.section("latency")
    doc.para(conditions(lat["environment"]))
    for para in notes.paragraphs(notes.ENGINE_NOTES)[2:]:
        doc.para(para)
    costs = "; ".join(f"batch {s['batch_size']}: fixed T = {T} costs {s['fixed_T_over_T1']:.2f}× fixed T = 1"
                      for s in lat["summary"] if "fixed_T_over_T1" in s)
    doc.para(f"Fixed T is timed two ways: the multi-step forward model(x, T) in plain batches, and the early-exit "
             f"engine at fixed T; the faster at T = {T}, the best fixed T, is the yardstick of every speedup. The "
             f"paper's ideal speedup T / avg. timesteps assumes every timestep costs the same; but the stem and the "
             f"input work run once per sample ({costs}), so early exit can reach at most "
             f"t(T) / [t(1) + (avg. timesteps − 1) · t(later step)], with t(1), t(later step) and t(T) from the same "
             f"rounds on the best fixed-T path: the reachable bound.")
    doc.table(fixed_table(lat["summary"]), f"The best fixed-T path per batch size, its cost at T = 1 and T = {T}, "
              "and the SNN's first timestep over one forward of the ANN of the same architecture (on the best path "
              "and on the engine).", columns=["batch", "best_fixed_path", "t1_ms", "tT_ms", "t1_over_ann",
                                              "engine_t1_over_ann"])
    doc.table(speedup_table(lat["summary"]), f"Speedup of each early-exit method over the best fixed T = {T}: measured "
              "(median of per-round ratios), the paper's ideal, the reachable bound on this machine and the fraction "
              "of it reached.", columns=["batch", "method", "speedup", "ideal", "reachable", "of_reachable"])
    doc.table(pd.read_csv(inputs["latency_csv"]), "Latency per method and batch size (ms per sample is paper Eq. 14).",
              columns=["method", "batch", "samples", "ms_per_sample", "samples_per_s", "avg_timesteps", "speedup"])
    wide = rule_latency(pd.read_csv(inputs["latency_csv"]))
    doc.table(wide, "Every exit rule side by side (the comparison of the report's section on published exit rules): "
                    f"measured speedup over the best fixed T = {T} at each engine batch size, from the same interleaved "
                    "rounds.",
              names={c: c.capitalize() + " (×)" for c in wide.columns if c.startswith("batch ")})
    doc.section("energy")
    doc.para(notes.paragraphs(notes.ENGINE_NOTES)[1])
    doc.table(pd.read_csv(inputs["energy_csv"]), "Energy per inference (test split, counted from spikes).",
              columns=["method", "test_accuracy", "avg_timesteps", "ACs_M", "MACs_M", "energy_uJ", "energy_vs_fixed_T1",
                       "energy_vs_ANN"])
    doc.para(" ".join(read_json(inputs["energy"])["conventions"].split()), style=SMALL)
    if teas:
        doc.section("teas")
        lat_teas = pd.read_csv(inputs["teas_latency_csv"])
        lat_teas["method"] = lat_teas["method"].str.replace(r"\[(.*)\]", lambda m: "(windows " + m[1].replace(",", "") + ")",
                                                            regex=True)
        doc.table(lat_teas, "TEAS: measured latency on the direct SNN (medians over interleaved rounds, "
                  "teas.latency_repetitions). Every TEAS row runs the unfused layer-major loop, as does 'fixed T "
                  "(layer-major)': compare them by vs_fixed_layer_major, not with the engine's fused, timestep-major "
                  "latency above; the multi-step forward row is the same network at fixed T on the engine's side.",
                  columns=["method", "path", "samples", "batch_size", "seconds_per_sample", "cpu_seconds_per_sample",
                           "vs_fixed_layer_major"])
    doc.build(path)
    return doc
