"""The energy stage: operation counts and energy of every method on the engine's SNN, counted on
the test split with methods.energy.OpCounter (paper appendix B)."""

from __future__ import annotations

import torch

from seenn.methods.energy import ADD_PJ, CONVENTIONS, MUL_PJ, count_run, layer_rows, method_entry


@torch.no_grad()
def stage_energy(ctx) -> None:
    """Stage energy: operation counts and energy of every method of `methods.catalog.engine_methods` (fixed
    T, SEENN-I at each rule's alpha, the conformal rule, SEENN-II, the ANN) on the test split, from
    the spikes the engine actually produces."""
    import logging

    import pandas as pd

    from seenn.common.artifacts import load_logits
    from seenn.common.io import read_json, write_json, write_table, write_text
    from seenn.data.files import open_split
    from seenn.data.source import held_inputs
    from seenn.loops.predict import load_snn
    from seenn.methods import engine
    from seenn.methods.catalog import POLICY_ALONE, engine_methods
    from seenn.models import ann_twin

    log = logging.getLogger("seenn")
    p = ctx.params
    bs = p["engine"]["energy_batch_size"]
    if p["engine"]["threads"] > 0:  # a fixed thread count: the same kernels, so the same spikes, everywhere
        torch.set_num_threads(p["engine"]["threads"])
    src, xin = held_inputs(open_split(ctx.inputs["test"]), p["engine"]["stream_samples"], p["loader"])
    spec, y = src.spec, src.y
    z, _ = load_logits(ctx.inputs["logits_test"])
    z = z[: y.shape[0]]  # a streamed split is cut to engine.stream_samples
    model, ck = load_snn(ctx.inputs["model"], spec)
    model.to(ctx.device).eval()
    T, n = ck["timesteps"], y.shape[0]
    xin = xin.to(ctx.device)
    methods, layers = [], []

    def outcome(res: engine.EngineResult, ref_t: torch.Tensor) -> tuple[float, float, bool]:
        ref_pred = z[torch.arange(n), ref_t - 1].argmax(-1)
        same = bool(torch.equal(res.exit_t, ref_t) and torch.equal(res.prediction, ref_pred))
        if not same:
            log.warning("engine and post-hoc evaluation disagree on %d samples", int(((res.exit_t != ref_t) | (res.prediction != ref_pred)).sum()))
        return float(res.exit_t.double().mean()), float((res.prediction == y).double().mean() * 100), same

    fixed_run = None  # fixed T: one run to T, counted per timestep, gives every fixed t <= T
    for method in engine_methods(T, read_json(ctx.inputs["seenn1"]), "policy" in ctx.inputs,
                                 read_json(ctx.inputs["guarantee"]), p["seenn1"]["calibration"]):
        name = method.label
        if method.kind == "fixed":
            if fixed_run is None:
                counter, res = count_run(model, lambda xb, counter: engine.run_fixed(model, xb, T, counter=counter), xin, bs)
                _, _, same = outcome(res, torch.full((n,), T, dtype=torch.long))
                fixed_run = counter, counter.per_timestep(T), same
            counter, steps, same = fixed_run
            t = method.T
            acs, macs = (sum(s[i] for s in steps[:t]) for i in (0, 1))
            acc = float(((z[:, t - 1].argmax(-1)) == y).double().mean() * 100)
            methods.append(method_entry(name, n, acs, macs, float(t), acc, same,
                                        counter.authors_convention(n, float(t), max_t=t)))
            layers += layer_rows(name, counter, n, max_t=t)
        elif method.kind == "rule":
            counter, res = count_run(model, lambda xb, counter: engine.run(model, xb, T, method.rule, counter=counter),
                                     xin, bs)
            avg_t, acc, same = outcome(res, method.rule.posthoc(z))
            methods.append(method_entry(name, n, *counter.totals(), avg_t, acc, same, counter.authors_convention(n, avg_t)))
            methods[-1].update(calibration=method.calibration, score=method.score)  # what the guarantee table matches
            layers += layer_rows(name, counter, n)
        elif method.kind == "seenn2":  # the SNN up to each chosen u, plus the policy network's MACs
            policy = engine.load_policy(ctx.inputs["policy"], spec, ctx.device)
            pcounter, _ = count_run(policy.model, lambda xb, counter: policy.model(xb), xin, bs, dense=True)
            counter, res = count_run(model, lambda xb, counter: engine.run_policy(model, xb, T, policy, counter=counter), xin, bs)
            avg_t, acc, same = outcome(res, engine.policy_exits(policy, xin, T, bs))
            acs, macs = counter.totals()
            p_authors = pcounter.authors_convention(n, 1.0)
            s_authors = counter.authors_convention(n, avg_t)
            methods.append(method_entry(name, n, acs, macs + pcounter.totals()[1], avg_t, acc, same,
                                        (s_authors[0], s_authors[1] + p_authors[1])))
            methods.append(method_entry(POLICY_ALONE, n, *pcounter.totals(), None, None, None, p_authors))
            layers += layer_rows(name, counter, n) + layer_rows("SEENN-II policy", pcounter, n)
        else:  # the ANN of the same architecture: one dense forward on one energy batch
            ann = ann_twin(model)
            counter, _ = count_run(ann, lambda xb, counter: ann(xb, 1), xin[:bs], bs, dense=True)
            m = min(bs, n)
            methods.append(method_entry(name, m, *counter.totals(), None, None, None, counter.authors_convention(m, 1.0)))
            layers += layer_rows(name, counter, m)
    ann_energy, t1_energy = methods[-1]["energy_uj"], methods[0]["energy_uj"]
    for entry in methods:
        entry["energy_vs_ann"] = entry["energy_uj"] / ann_energy
        entry["energy_vs_fixed_t1"] = entry["energy_uj"] / t1_energy
    notes = CONVENTIONS
    share = None
    pol = next((e for e in methods if e["method"] == POLICY_ALONE), None)
    if pol is not None:  # the ANN of the same architecture is one dense SNN timestep (stem included)
        share = {"of_one_timestep_dense_ops_percent": 100 * pol["macs"] / methods[-1]["macs"],
                 "of_fixed_t1_energy_percent": 100 * pol["energy_uj"] / t1_energy}
        notes += (f" The SEENN-II policy network costs {share['of_one_timestep_dense_ops_percent']:.2f} % of one SNN "
                  f"timestep's dense operations (the ANN row) and {share['of_fixed_t1_energy_percent']:.1f} % of the "
                  "energy of fixed T=1 (whose spike-driven layers cost additions only).")
    write_json(ctx.outputs["energy"], {"pj_per_addition": ADD_PJ, "pj_per_multiplication": MUL_PJ, "test_samples": n,
                                       "timesteps": T, "seenn1_calibration": p["seenn1"]["calibration"], "conventions": notes, "policy_share": share, "methods": methods})
    write_text(ctx.outputs["layers"], pd.DataFrame(layers).to_csv(index=False, float_format="%.6f"))
    write_table(energy_table(methods), ctx.outputs["table_csv"], ctx.outputs["table_md"], notes=notes)


def energy_table(methods: list[dict]):
    """Operations and energy per inference: ACs and MACs in millions, energy in microjoules."""
    import pandas as pd

    return pd.DataFrame([{
        "method": m["method"], "test_accuracy": m["accuracy"], "avg_timesteps": m["avg_timesteps"],
        "ACs_M": m["acs"] / 1e6, "MACs_M": m["macs"] / 1e6, "energy_uJ": m["energy_uj"],
        "energy_vs_ANN": m["energy_vs_ann"], "energy_vs_fixed_T1": m["energy_vs_fixed_t1"],
        "energy_uJ_authors_counting": m["energy_uj_authors"]} for m in methods])


def declare(branch):
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import TABLES, engine_inputs

    d = branch.dir
    return Stage(name="energy", run=stage_energy,
                 desc="ACs and MACs per layer and timestep from real spikes, and energy: fixed T, SEENN-I/II, conformal, ANN",
                 params=("device", "deterministic", "loader", "engine.threads", "engine.energy_batch_size",
                         "engine.stream_samples", "seenn1.calibration"),
                 inputs={**engine_inputs(branch), "logits_test": f"{d}/logits_test.pt"},
                 outputs={"energy": f"{d}/energy.json", "layers": f"{d}/energy_layers.csv",
                          "table_csv": f"{TABLES}/energy.csv", "table_md": f"{TABLES}/energy.md"})
