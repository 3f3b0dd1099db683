"""The SEENN-II stages: `seenn2_train` trains one policy per beta of `seenn2.betas` (the tradeoff
curve); `seenn2_evaluate` applies them to the test split (u = argmax pi) and counts the policy's
operations against the SNN's; `seenn2_compare` tests, at the main beta, the other estimator and
the other training split / weighting choices beside the configured policy; `seenn2_select_<branch>`
picks a branch's training rule on the validation split."""

from __future__ import annotations

import logging

import pandas as pd
import torch

from seenn.common.artifacts import copy_text, load_logits, read_csv, save_policies, write_csv
from seenn.common.errors import SeennError
from seenn.common.io import read_json, sha256_file, write_json
from seenn.common.runtime import tf32_enabled
from seenn.loops.resume import fingerprint
from seenn.methods.policy.estimators import VARIANTS, t1_accuracy
from seenn.methods.policy.inputs import load_policy_split, policy_in_channels
from seenn.methods.policy.loading import load_policies
from seenn.methods.policy.selection import cfg_of, compare_cells, select_variant, weighting_note
from seenn.methods.policy.training import POLICY_KEYS, beta_tag, evaluate_policy, fit_policy

log = logging.getLogger("seenn")


def _run_fp(ctx, cell: dict, split: str) -> str:
    """Checkpoint fingerprint: the policy settings, the cell, and the hashes of its inputs."""
    return fingerprint({k: ctx.params["seenn2"][k] for k in POLICY_KEYS}, ctx.params["seed"], cell,
                       sha256_file(ctx.inputs[split]), sha256_file(ctx.inputs[f"logits_{split}"]))


def _variant(ctx) -> str:
    """The training rule of this stage (its declaration's `variant` option; the paper's by default)."""
    return ctx.extras.get("variant", "paper")


def stage_seenn2_train(ctx) -> None:
    """Stage seenn2_train[_<branch>[_<variant>]]: for each beta in seenn2.betas, train a policy on
    the configured split with the configured estimator and the stage's variant (action grid and
    reward) -> policies.pt + policy_log.csv (one row per beta and epoch)."""
    s = ctx.params["seenn2"]
    split, variant = s["train_split"], _variant(ctx)
    spec, x, c = load_policy_split(ctx.inputs[split], ctx.inputs[f"logits_{split}"])
    entries, rows = [], []
    for beta in s["betas"]:
        cell = {"beta": beta, "estimator": s["estimator"], "train_split": split, "sample_weighting": s["sample_weighting"],
                "variant": variant}
        with tf32_enabled(ctx.params["train"]["tf32"]):
            policy, log_rows = fit_policy(x, c, cfg=s, beta=beta, estimator=s["estimator"], weighting=s["sample_weighting"],
                                          epochs=s["epochs"], in_channels=policy_in_channels(spec), seed=ctx.params["seed"],
                                          device=ctx.device, ckpt_dir=ctx.checkpoint_dir / f"beta_{beta_tag(beta)}",
                                          fp=_run_fp(ctx, cell, split), desc=f"policy beta={beta:g}", variant=variant)
        entries.append({**cell, "r_t1": t1_accuracy(c), "state_dict": policy.state_dict()})
        rows += [{**cell, **r} for r in log_rows]
    save_policies(ctx.outputs["policies"], entries, cfg=s, in_channels=policy_in_channels(spec), timesteps=c.shape[1],
                  grid=policy.grid, dataset=spec.name)
    write_csv(ctx.outputs["log"], rows)


def stage_seenn2_evaluate(ctx) -> None:
    """Stage seenn2_evaluate[...]: policies + val/test splits and logits -> sweep.csv (one row per
    beta: test and validation, beside SEENN-I at the same validation cost) and seenn2.json (the
    main beta's operating point, its weighting, and the operation counts of policy and SNN,
    counted on the real models)."""
    from seenn.loops.predict import load_snn
    from seenn.methods.seenn1 import at_budget
    from seenn.snn.ops import ann_macs, snn_macs

    obj, policies = load_policies(ctx.inputs["policies"])
    spec, xt, ct = load_policy_split(ctx.inputs["test"], ctx.inputs["logits_test"])
    _, xv, cv = load_policy_split(ctx.inputs["val"], ctx.inputs["logits_val"])
    if ct.shape[1] != obj["actions"]:
        raise SeennError(f"policies in {ctx.inputs['policies']} pick among 1..{obj['actions']} timesteps but the SNN "
                         f"logits have T = {ct.shape[1]}: rerun seenn2_train")
    seenn1 = read_json(ctx.inputs["seenn1"])
    zv, yv = load_logits(ctx.inputs["logits_val"])
    zt, yt = load_logits(ctx.inputs["logits_test"])
    rows = []
    for e, policy in zip(obj["entries"], policies):
        r = evaluate_policy(policy, xt, ct, ctx.device)
        v = evaluate_policy(policy, xv, cv, ctx.device)
        row = {"beta": e["beta"], "estimator": e["estimator"], "train_split": e["train_split"],
               "sample_weighting": e["sample_weighting"], "variant": e["variant"], "test_accuracy": r["test_accuracy"],
               "test_avg_timesteps": r["test_avg_timesteps"],
               **{f"exit_t{t}": n for t, n in enumerate(r["test_exit_histogram"], 1)},
               "val_accuracy": v["test_accuracy"], "val_avg_timesteps": v["test_avg_timesteps"]}
        for score, p in at_budget(zv, yv, zt, yt, seenn1["settings"], v["test_avg_timesteps"]).items():
            row.update({f"seenn1_{score}_{k}": p[k] for k in ("alpha", "val_avg_timesteps", "test_accuracy",
                                                              "test_avg_timesteps")})
        rows.append(row)
    main_beta = ctx.params["seenn2"]["beta"]
    i = next(i for i, e in enumerate(obj["entries"]) if e["beta"] == main_beta)
    snn, _ = load_snn(ctx.inputs["model"], spec)
    pol = ann_macs(policies[i], tuple(xt.shape[1:]))
    snn_ops = snn_macs(snn, spec.input_shape)
    main = rows[i]
    T = int(ct.shape[1])
    one_step = snn_ops["fixed"] + snn_ops["per_timestep"]
    at_avg = snn_ops["fixed"] + main["test_avg_timesteps"] * snn_ops["per_timestep"]
    entry = obj["entries"][i]
    result = {
        "beta": main_beta, "estimator": main["estimator"], "train_split": main["train_split"],
        "sample_weighting": main["sample_weighting"], "variant": entry["variant"], "action_grid": obj["action_grid"],
        "timesteps": T, "weighting": weighting_note(entry["r_t1"], entry["sample_weighting"]),
        "test_accuracy": main["test_accuracy"], "test_avg_timesteps": main["test_avg_timesteps"],
        "test_exit_histogram": [main[f"exit_t{t}"] for t in range(1, T + 1)],
        "val_accuracy": main["val_accuracy"], "val_avg_timesteps": main["val_avg_timesteps"],
        "policy": {k: obj[k] for k in ("policy_stem_channels", "policy_widths", "policy_stem_stride")},
        "ops": {"policy_macs": pol["macs"], "policy_params": pol["params"],
                "snn_macs_per_timestep": snn_ops["per_timestep"], "snn_macs_fixed": snn_ops["fixed"],
                "snn_params": snn_ops["params"],
                "policy_share_of_one_timestep_percent": 100 * pol["macs"] / one_step,
                "policy_share_at_avg_timesteps_percent": 100 * pol["macs"] / at_avg,
                # SEENN-II's dense cost (SNN at the average timesteps + policy) in SNN timesteps
                "timestep_equivalents_with_policy": main["test_avg_timesteps"] + pol["macs"] / snn_ops["per_timestep"]},
    }
    write_csv(ctx.outputs["sweep"], rows)
    write_json(ctx.outputs["result"], result)
    # the main-beta policy on its own, for the early-exit engine (energy and latency stages)
    save_policies(ctx.outputs["policy"], [obj["entries"][i]], cfg=obj, in_channels=obj["in_channels"],
                  timesteps=obj["actions"], grid=obj["action_grid"], dataset=obj["dataset"])


def stage_seenn2_select(ctx) -> None:
    """Stage seenn2_select_<branch>: the branch's SEENN-II variants at the main beta -> variants.csv
    (validation and test of each), and the chosen one's seenn2.json and sweep.csv as the branch's
    SEENN-II (`<section>.seenn2_variant`: `validation` picks on the validation split, or a name)."""
    choice = _declared_choice(ctx.params)
    names = [k.removeprefix("result_") for k in ctx.inputs if k.startswith("result_")]
    results = {n: read_json(ctx.inputs[f"result_{n}"]) for n in names}
    full_val = read_json(ctx.inputs["seenn1"])["full_t"]["val_accuracy"]
    table = pd.DataFrame([{"variant": n, "action_grid": VARIANTS[n][0], "reward": VARIANTS[n][1],
                           "actions": len(results[n]["action_grid"]), "beta": results[n]["beta"],
                           **{k: results[n][k] for k in ("val_accuracy", "val_avg_timesteps", "test_accuracy",
                                                         "test_avg_timesteps")}} for n in names])
    if choice == "validation":
        pick = names[select_variant(table, full_val, ctx.params["seenn1"]["tolerance_points"])]
    elif choice in results:
        pick = choice
    else:
        raise SeennError(f"seenn2_variant '{choice}' is not a variant of stage {ctx.name}; variants: {', '.join(names)}")
    table["chosen"] = table["variant"] == pick
    write_csv(ctx.outputs["variants"], table.to_dict("records"))
    write_json(ctx.outputs["result"], {**results[pick], "selected_by": choice})
    copy_text(ctx.inputs[f"sweep_{pick}"], ctx.outputs["sweep"])


def _declared_choice(params: dict) -> str:
    """The `seenn2_variant` key the select stage declares (in the branch's own section)."""
    found = [v["seenn2_variant"] for k, v in params.items() if isinstance(v, dict) and "seenn2_variant" in v]
    if len(found) != 1:
        raise SeennError(f"the select stage must declare exactly one '<section>.seenn2_variant' key, found {len(found)}")
    return found[0]


def _main_cell(ctx, cell: dict) -> tuple[torch.nn.Module, list[dict]]:
    """The configured policy at the main beta, as seenn2_train trained it (not trained twice)."""
    obj, policies = load_policies(ctx.inputs["policies"])
    keys = ("beta", "estimator", "train_split", "sample_weighting")
    for e, policy in zip(obj["entries"], policies):
        if all(e[k] == cell[k] for k in keys):
            log_df = read_csv(ctx.inputs["policy_log"])
            mine = log_df[(log_df["beta"] == cell["beta"])].drop(columns=list(keys))
            return policy, mine.to_dict("records")
    raise SeennError(f"{ctx.inputs['policies']} holds no policy for {cell}: rerun seenn2_train")


def stage_seenn2_compare(ctx) -> None:
    """Stage seenn2_compare: at the main beta, test a policy for each cell of `compare_cells`
    (the configured one from seenn2_train, the others trained here for `seenn2.epochs` epochs on
    their split) -> compare.csv (test accuracy, average timesteps, and the policy's greedy
    behaviour on its own training split) + compare_log.csv (training curves)."""
    from seenn.snn.ops import ann_macs

    s = ctx.params["seenn2"]
    data = {split: load_policy_split(ctx.inputs[split], ctx.inputs[f"logits_{split}"]) for split in ("val", "train")}
    spec, xt, ct = load_policy_split(ctx.inputs["test"], ctx.inputs["logits_test"])
    rows, log_rows = [], []
    for i, cell in enumerate(compare_cells(s)):
        split = cell["train_split"]
        _, x, c = data[split]
        cfg = cfg_of(cell, s)
        if i == 0:
            policy, lr = _main_cell(ctx, cell)
        else:
            name = f"{cell['estimator']}_{split}_{'weighted' if cell['sample_weighting'] else 'unweighted'}"
            name += "_table6" if cell["policy"] == "table6" else ""
            with tf32_enabled(ctx.params["train"]["tf32"]):
                policy, lr = fit_policy(x, c, cfg=cfg, beta=cell["beta"], estimator=cell["estimator"],
                                        weighting=cell["sample_weighting"], epochs=s["epochs"],
                                        in_channels=policy_in_channels(spec), seed=ctx.params["seed"], device=ctx.device,
                                        ckpt_dir=ctx.checkpoint_dir / name, fp=_run_fp(ctx, cell, split),
                                        desc=f"policy {name}")
        r = evaluate_policy(policy, xt, ct, ctx.device)
        arch = f"{cfg['policy_stem_channels']}/{'-'.join(map(str, cfg['policy_widths']))}"
        rows.append({**cell, "policy_arch": f"{arch}, stem stride {cfg['policy_stem_stride']}",
                     "policy_macs": ann_macs(policy, tuple(xt.shape[1:]))["macs"], "epochs": s["epochs"],
                     "train_split_accuracy_t1": float(c[:, 0].double().mean() * 100),
                     "train_split_mean_u": lr[-1]["mean_u"], "train_split_accuracy": lr[-1]["accuracy"],
                     "test_accuracy": r["test_accuracy"], "test_avg_timesteps": r["test_avg_timesteps"],
                     **{f"exit_t{t}": n for t, n in enumerate(r["test_exit_histogram"], 1)}})
        log_rows += [{**cell, **row} for row in lr]
    write_csv(ctx.outputs["compare"], rows)
    write_csv(ctx.outputs["log"], log_rows)


# seenn2 keys the policy trainings read; `seenn2.beta` (the main operating point) and `seenn2.betas`
# (the sweep) are added per stage. Reruns of a policy stage resume every policy whose settings did not
# change from its last checkpoint, so adding a beta trains only that beta.
SEENN2_TRAIN_KEYS = tuple(f"seenn2.{k}" for k in ("train_split", "sample_weighting", "estimator", "reward_base", "epochs",
                                                  "batch_size", "lr", "momentum", "weight_decay", "policy_stem_channels",
                                                  "policy_widths", "policy_stem_stride", "log_every"))


def declare_rule(branch, out: str, suffix: str, variant: str, compare: bool) -> list:
    """SEENN-II on one SNN branch with one training rule (`VARIANTS`): one policy per beta trained
    on the branch's saved per-timestep correctness, its test evaluation with operation counts and
    SEENN-I at the same validation cost (and the main-beta policy alone, role 'policy', for the
    engine), and optionally the estimator x training-split comparison."""
    from seenn.stages.declaration import RUNTIME_KEYS, TF32_KEY, Stage
    from seenn.stages.layout import split_paths

    s, d = split_paths(), branch.dir
    logits = {f"logits_{k}": f"{d}/logits_{k}.pt" for k in ("train", "val", "test")}
    opts = {"variant": variant}
    stages = [
        Stage(name=f"seenn2_train{suffix}", run=stage_seenn2_train,
              desc=f"SEENN-II: train one policy network per beta on the {branch.name} SNN's saved per-timestep "
                   f"correctness ({variant} rule)",
              params=RUNTIME_KEYS + SEENN2_TRAIN_KEYS + ("seenn2.betas", TF32_KEY),
              inputs={"train": s["train"], "val": s["val"], "logits_train": logits["logits_train"],
                      "logits_val": logits["logits_val"]},
              outputs={"policies": f"{out}/policies.pt", "log": f"{out}/policy_log.csv"},
              plots=("log",), checkpoints=True, options=opts, threads="all"),
        Stage(name=f"seenn2_evaluate{suffix}", run=stage_seenn2_evaluate,
              desc=f"SEENN-II on the test split (u = argmax pi) for every beta on the {branch.name} SNN ({variant} rule), "
                   "beside SEENN-I at the same validation cost; operations of policy and SNN",
              params=("device", "deterministic", "seenn2.beta"),
              inputs={"policies": f"{out}/policies.pt", "model": branch.model, "val": s["val"], "test": s["test"],
                      "logits_val": logits["logits_val"], "logits_test": logits["logits_test"], "seenn1": f"{d}/seenn1.json"},
              outputs={"sweep": f"{out}/sweep.csv", "result": f"{out}/seenn2.json", "policy": f"{out}/policy.pt"},
              options=opts, threads="all"),
    ]
    if compare:
        stages.append(
            Stage(name=f"seenn2_compare{suffix}", run=stage_seenn2_compare,
                  desc="SEENN-II at the main beta: expected-reward vs REINFORCE, held-out vs train split, weighting "
                       "on/off, and the paper's Table 6 policy",
                  params=RUNTIME_KEYS + SEENN2_TRAIN_KEYS + ("seenn2.beta", TF32_KEY),
                  inputs={**s, **logits, "policies": f"{out}/policies.pt", "policy_log": f"{out}/policy_log.csv"},
                  outputs={"compare": f"{out}/compare.csv", "log": f"{out}/compare_log.csv"},
                  plots=("log",), checkpoints=True, threads="all"))
    return stages


def declare(branch) -> list:
    """SEENN-II stages of one branch: one training rule writing to `branch.seenn2_out`, or several,
    each a stage pair writing to <out>/<rule>/, then `seenn2_select_<branch>`, which picks one on
    the validation split (`<section>.seenn2_variant`) and writes it as the branch's SEENN-II."""
    from seenn.stages.declaration import Stage

    out = branch.seenn2_out
    if out is None:
        return []
    if branch.seenn2_section is None:
        (variant,) = branch.seenn2_variants
        return declare_rule(branch, out, "", variant, branch.seenn2_compare)
    rules = branch.seenn2_variants
    stages = [st for v in rules for st in declare_rule(branch, f"{out}/{v}", f"_{branch.name}_{v}", v, False)]
    stages.append(
        Stage(name=f"seenn2_select_{branch.name}", run=stage_seenn2_select,
              desc=f"SEENN-II on the {branch.name} SNN: the training rule picked on the validation split among "
                   f"{', '.join(rules)}",
              params=(f"{branch.seenn2_section}.seenn2_variant", "seenn1.tolerance_points"),
              inputs={**{f"result_{v}": f"{out}/{v}/seenn2.json" for v in rules},
                      **{f"sweep_{v}": f"{out}/{v}/sweep.csv" for v in rules}, "seenn1": f"{branch.dir}/seenn1.json"},
              outputs={"result": f"{out}/seenn2.json", "sweep": f"{out}/sweep.csv", "variants": f"{out}/variants.csv"},
              threads="all"))
    return stages
