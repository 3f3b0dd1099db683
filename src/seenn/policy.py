"""SEENN-II: train the policy network that picks the number of timesteps u in 1..T per input.

The SNN is never rerun here: whether its accumulated prediction is correct at every u is read
from the per-timestep logits the evaluate stage saved (correctness table c [N, T]).

Reward (authors' code): R(u) = reward_base^-(u-1) when the SNN is correct at u, else -beta.
For a long T (the converted SNN) that reward is nearly zero past u ~ 10, so a branch can also
train variants: an action grid of 1, 2, 4, ..., T instead of every u, and a linear reward
R(u) = 1 - (u-1)/T; `seenn2_select` picks among a branch's variants on the validation split.
Optional per-sample weighting (authors' code): w = 1 for samples the SNN gets right at t = 1,
w = r / (1 - r) for the others, r = accuracy at t = 1 on the policy's training split; it gives
the rare "hard" samples as much total weight as the easy ones.

Two estimators of the policy gradient:
- expected:  maximize the exact expected reward mean_b w_b sum_u pi(u|x_b) R_b(u), possible
             because R is known for every action (what the authors' code does);
- reinforce: sample one u_b ~ pi(.|x_b) per sample and step along w_b (R_b(u_b) - b)
             grad log pi(u_b|x_b), b = the mean of the other samples' sampled rewards in the
             batch (leave-one-out; the paper's description: reinforcement learning with a baseline).
Sampling uses the stage's seeded generator, so training is deterministic and resumable.

Stages: `seenn2_train` trains one policy per beta of `seenn2.betas` (the tradeoff curve);
`seenn2_evaluate` applies them to the test split (u = argmax pi, via exits.policy_exit) and
counts the policy's operations against the SNN's; `seenn2_compare` tests, at the main beta, the
other estimator and the other training split / weighting choices beside the configured policy."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from .artifacts import copy_text, load_logits, open_split, read_csv, save_policies, write_csv
from .checkpoint import fingerprint, run_epochs
from .data import DatasetSpec, to_input
from .data.source import StreamedInputs
from .errors import SeennError
from .exits import policy_exit
from .io import read_json, sha256_file, write_json
from .metrics import correctness, doubling_timesteps, exit_histogram, exit_outcome
from .models.policy import build_policy
from .policy_inference import load_policies
from .progress import progress

log = logging.getLogger("seenn")

ESTIMATORS = ("expected", "reinforce")
ACTION_GRIDS = ("all", "powers_of_two")
REWARD_SHAPES = ("exponential", "linear")
# the SEENN-II training rules a branch can train, by name: (action grid, reward shape)
VARIANTS = {"paper": ("all", "exponential"), "pow2": ("powers_of_two", "exponential"),
            "linear": ("all", "linear"), "pow2_linear": ("powers_of_two", "linear")}
POLICY_KEYS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "reward_base", "policy_stem_channels",
               "policy_widths", "policy_stem_stride")
TABLE6_POLICY = {"policy_stem_channels": 16, "policy_widths": [16, 32, 64], "policy_stem_stride": 1}  # paper Table 6


# --- reward and estimators -------------------------------------------------------------------

def action_grid(name: str, T: int) -> list[int]:
    """The exit timesteps a policy chooses among: every u in 1..T (the paper), or 1, 2, 4, ..., T
    (a few actions whose costs differ by a factor of two, for a long T)."""
    if name == "all":
        return list(range(1, T + 1))
    if name == "powers_of_two":
        return doubling_timesteps(T)
    raise ValueError(f"unknown action grid '{name}', expected one of {ACTION_GRIDS}")


def reward_table(correct: torch.Tensor, beta: float, base: float = 2.0, shape: str = "exponential",
                 grid: list[int] | None = None) -> torch.Tensor:
    """R [N, A] over the actions u of `grid` (default 1..T): the gain where the SNN is correct at
    u, -beta where it is wrong. Gain: base^-(u-1) (exponential, the authors') or 1 - (u-1)/T
    (linear: falls evenly over the whole window, so late exits still earn something)."""
    T = correct.shape[1]
    u = torch.tensor(list(range(1, T + 1)) if grid is None else grid, dtype=torch.long)
    if shape == "exponential":
        gain = base ** -(u - 1).to(torch.float32)
    elif shape == "linear":
        gain = 1 - (u - 1).to(torch.float32) / T
    else:
        raise ValueError(f"unknown reward shape '{shape}', expected one of {REWARD_SHAPES}")
    c = correct[:, u - 1]
    return torch.where(c, gain.expand_as(c), torch.full(c.shape, -float(beta)))


def t1_accuracy(correct: torch.Tensor) -> float:
    """r: the fraction of samples the SNN gets right at t = 1 (what the authors' weighting uses)."""
    return float(correct[:, 0].double().mean())


def sample_weights(correct: torch.Tensor, weighting: bool) -> torch.Tensor:
    """Per-sample weights [N]: all 1, or the authors' w = r/(1-r) for samples wrong at t = 1
    (r = their accuracy at t = 1 on this split)."""
    w = torch.ones(correct.shape[0])
    if not weighting:
        return w
    r = t1_accuracy(correct)
    if r <= 0.0 or r >= 1.0:  # every sample right (or wrong) at t = 1: nothing to reweight
        return w
    return torch.where(correct[:, 0], w, torch.full_like(w, r / (1 - r)))


def expected_loss(logits: torch.Tensor, rewards: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minus the exact weighted expected reward; returns (loss, per-sample expected reward)."""
    er = (torch.softmax(logits, -1) * rewards).sum(-1)
    return -(w * er).mean(), er.detach()


def reinforce_loss(logits: torch.Tensor, rewards: torch.Tensor, w: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE with a leave-one-out baseline: one sampled action per sample, baseline b_i = the
    mean of the other samples' rewards, so it does not depend on sample i's own action (the plain
    batch mean does, biasing the gradient by O(1/batch)); a batch of one gets baseline 0. Returns
    (loss whose gradient is the estimator, per-sample sampled reward)."""
    probs = torch.softmax(logits.detach().float().cpu(), -1)
    u = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(logits.device)
    r = rewards.gather(1, u[:, None]).squeeze(1)
    n = r.numel()
    baseline = (r.sum() - r) / (n - 1) if n > 1 else torch.zeros_like(r)
    advantage = w * (r - baseline)
    logp = torch.log_softmax(logits, -1).gather(1, u[:, None]).squeeze(1)
    return -(advantage * logp).mean(), r.detach()


def policy_loss(estimator: str, logits, rewards, w, generator):
    if estimator == "expected":
        return expected_loss(logits, rewards, w)
    if estimator == "reinforce":
        return reinforce_loss(logits, rewards, w, generator)
    raise ValueError(f"unknown estimator '{estimator}', expected one of {ESTIMATORS}")


# --- inputs ----------------------------------------------------------------------------------

def policy_input(spec: DatasetSpec, x: torch.Tensor) -> torch.Tensor:
    """What the policy sees: the normalized image; for event data, the mean frame over time (a
    static summary of the recording, since the policy decides before the SNN runs)."""
    inp = to_input(spec, x)
    return inp.mean(1) if spec.event else inp


def policy_in_channels(spec: DatasetSpec) -> int:
    return spec.input_shape[-3]


def load_policy_split(split_path, logits_path) -> tuple[DatasetSpec, torch.Tensor, torch.Tensor]:
    """(spec, policy inputs [N, C, H, W], SNN correctness [N, T]) of one split; the logits file
    must hold the same samples as the split file."""
    src = open_split(split_path)
    spec, y = src.spec, src.y
    z, yl = load_logits(logits_path)
    if yl.shape != y.shape or not torch.equal(yl, y):
        raise SeennError(f"logits {logits_path} do not match the samples of {split_path}: rerun the evaluate stage")
    inputs = StreamedInputs(src) if src.streamed else policy_input(spec, src.x)  # streamed: static images only
    return spec, inputs, correctness(z, yl)


# --- training --------------------------------------------------------------------------------

@torch.no_grad()
def policy_logits(policy, x: torch.Tensor, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """Action logits [N, T] in eval mode."""
    policy.eval()
    return torch.cat([policy(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, x.shape[0], batch_size)])


def fit_policy(x: torch.Tensor, correct: torch.Tensor, *, cfg: dict, beta: float, estimator: str, weighting: bool,
               epochs: int, in_channels: int, seed: int, device: torch.device, ckpt_dir: Path, fp: str,
               desc: str, variant: str = "paper") -> tuple[torch.nn.Module, list[dict]]:
    """Train one policy on (inputs x, SNN correctness table) with SGD + cosine; resumable, and
    deterministic given `seed` (same seed: same initial weights and batch order for every beta).
    `variant` names the action grid and reward shape (`VARIANTS`)."""
    grid_name, shape = VARIANTS[variant]
    grid = action_grid(grid_name, correct.shape[1])
    torch.manual_seed(seed)
    policy = build_policy(in_channels, len(grid), cfg["policy_stem_channels"], cfg["policy_widths"],
                          cfg["policy_stem_stride"], grid).to(device)
    rewards = reward_table(correct, beta, cfg["reward_base"], shape, grid)
    w = sample_weights(correct, weighting)
    opt = torch.optim.SGD(policy.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    steps_per_epoch = math.ceil(x.shape[0] / cfg["batch_size"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)

    def epoch_fn(epoch: int) -> dict:
        """One epoch; the logged greedy (u = argmax pi) reward, mean u and accuracy are those of
        each batch's forward pass before its update (no extra pass over the split)."""
        policy.train()
        lr = opt.param_groups[0]["lr"]
        total, obj_sum, reward_sum, u_sum, hits = 0, 0.0, 0.0, 0, 0
        order = torch.randperm(x.shape[0], generator=gen)
        bar = progress(range(0, x.shape[0], cfg["batch_size"]), desc=f"{desc} epoch {epoch}/{epochs}")
        for i in bar:
            idx = order[i : i + cfg["batch_size"]]
            logits = policy(x[idx].to(device))
            loss, r = policy_loss(estimator, logits, rewards[idx].to(device), w[idx].to(device), gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            a = logits.detach().cpu().argmax(-1)
            u = policy_exit(logits.detach().cpu(), grid)
            reward_sum += float(rewards[idx].gather(1, a[:, None]).double().sum())
            hits += int(correct[idx].gather(1, (u - 1)[:, None]).sum())
            u_sum += int(u.sum())
            obj_sum += float(r.sum())
            total += idx.numel()
            bar.set_postfix(reward=f"{reward_sum / total:.4f}", mean_u=f"{u_sum / total:.2f}")
        row = {"epoch": epoch, "steps": epoch * steps_per_epoch, "lr": lr, "train_reward": obj_sum / total,
               "mean_reward": reward_sum / total, "mean_u": u_sum / total, "accuracy": 100 * hits / total}
        log.info("%s epoch %d: estimator reward %.4f, greedy: reward %.4f mean u %.3f accuracy %.2f %%",
                 desc, epoch, row["train_reward"], row["mean_reward"], row["mean_u"], row["accuracy"])
        return row

    rows = run_epochs(name=desc, ckpt_dir=ckpt_dir, fp=fp, epochs=epochs, model=policy, optimizer=opt,
                      scheduler=sched, generator=gen, epoch_fn=epoch_fn)
    return policy.cpu(), rows


def beta_tag(beta: float) -> str:
    return f"{beta:g}".replace(".", "p").replace("-", "m")


def evaluate_policy(policy, x: torch.Tensor, correct: torch.Tensor, device: torch.device) -> dict:
    """SEENN-II at test time: u = argmax pi(u|x); accuracy, average timesteps, exit histogram."""
    u = policy_exit(policy_logits(policy.to(device), x, device), policy.grid)
    acc, avg_t = exit_outcome(correct, u)
    return {"test_accuracy": acc, "test_avg_timesteps": avg_t, "test_exit_histogram": exit_histogram(u, correct.shape[1])}


def _run_fp(ctx, cell: dict, split: str) -> str:
    """Checkpoint fingerprint: the policy settings, the cell, and the hashes of its inputs."""
    return fingerprint({k: ctx.params["seenn2"][k] for k in POLICY_KEYS}, ctx.params["seed"], cell,
                       sha256_file(ctx.inputs[split]), sha256_file(ctx.inputs[f"logits_{split}"]))


# --- stages ----------------------------------------------------------------------------------

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
        policy, log_rows = fit_policy(x, c, cfg=s, beta=beta, estimator=s["estimator"], weighting=s["sample_weighting"],
                                      epochs=s["epochs"], in_channels=policy_in_channels(spec), seed=ctx.params["seed"],
                                      device=ctx.device, ckpt_dir=ctx.checkpoint_dir / f"beta_{beta_tag(beta)}",
                                      fp=_run_fp(ctx, cell, split), desc=f"policy beta={beta:g}", variant=variant)
        entries.append({**cell, "r_t1": t1_accuracy(c), "state_dict": policy.state_dict()})
        rows += [{**cell, **r} for r in log_rows]
    save_policies(ctx.outputs["policies"], entries, cfg=s, in_channels=policy_in_channels(spec), timesteps=c.shape[1],
                  grid=policy.grid, dataset=spec.name)
    write_csv(ctx.outputs["log"], rows)


def weighting_note(r: float, weighting: bool) -> dict:
    """What the authors' weighting did on this branch: r (accuracy at t = 1 on the policy's
    training split) and the weight of each sample wrong at t = 1 (1 when switched off)."""
    w = r / (1 - r) if weighting and 0.0 < r < 1.0 else 1.0
    return {"r_t1": r, "share_wrong_at_t1": 1 - r, "weight_wrong_at_t1": w}


def stage_seenn2_evaluate(ctx) -> None:
    """Stage seenn2_evaluate[...]: policies + val/test splits and logits -> sweep.csv (one row per
    beta: test and validation, beside SEENN-I at the same validation cost) and seenn2.json (the
    main beta's operating point, its weighting, and the operation counts of policy and SNN,
    counted on the real models)."""
    from .ops import ann_macs, snn_macs
    from .seenn1 import at_budget
    from .inference import load_snn

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


def select_variant(points: pd.DataFrame, full_val_accuracy: float, tolerance_points: float) -> int:
    """Row of the variant picked on validation, by SEENN-I's calibration rule: the fewest
    validation timesteps among those within `tolerance_points` of full-T validation accuracy;
    if none is, the most accurate one (columns val_accuracy, val_avg_timesteps, variant)."""
    ok = points[points["val_accuracy"] >= full_val_accuracy - tolerance_points - 1e-9]
    if ok.empty:
        return int(points.sort_values(["val_accuracy", "val_avg_timesteps"], ascending=[False, True]).index[0])
    return int(ok.sort_values(["val_avg_timesteps", "val_accuracy"], ascending=[True, False]).index[0])


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


def compare_cells(s: dict) -> list[dict]:
    """The grid `seenn2_compare` reports at the main beta: the configured policy first, then the
    other estimator at the configured split and weighting, then the configured estimator on every
    other (training split, weighting) pair -- 5 cells; and, when the configured policy is not the
    paper's Table 6 ResNet-8, that one too (what the smaller policy costs in accuracy)."""
    main = {"beta": s["beta"], "estimator": s["estimator"], "train_split": s["train_split"],
            "sample_weighting": s["sample_weighting"], "variant": "paper", "policy": "configured"}
    cells = [main] + [{**main, "estimator": e} for e in ESTIMATORS if e != main["estimator"]]
    cells += [{**main, "train_split": split, "sample_weighting": wt} for split in ("val", "train") for wt in (False, True)
              if (split, wt) != (main["train_split"], main["sample_weighting"])]
    if any(s[k] != v for k, v in TABLE6_POLICY.items()):
        cells.append({**main, "policy": "table6"})
    return cells


def cfg_of(cell: dict, s: dict) -> dict:
    """The seenn2 settings a comparison cell trains with (the Table 6 cell swaps in its policy)."""
    return {**s, **TABLE6_POLICY} if cell["policy"] == "table6" else s


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
    from .ops import ann_macs

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
            policy, lr = fit_policy(x, c, cfg=cfg, beta=cell["beta"], estimator=cell["estimator"],
                                    weighting=cell["sample_weighting"], epochs=s["epochs"],
                                    in_channels=policy_in_channels(spec), seed=ctx.params["seed"], device=ctx.device,
                                    ckpt_dir=ctx.checkpoint_dir / name, fp=_run_fp(ctx, cell, split), desc=f"policy {name}")
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



# --- declarations ----------------------------------------------------------------------------

# seenn2 keys the policy trainings read; `seenn2.beta` (the main operating point) and `seenn2.betas`
# (the sweep) are added per stage. Reruns of a policy stage resume every policy whose settings did not
# change from its last checkpoint, so adding a beta trains only that beta.
SEENN2_TRAIN_KEYS = tuple(f"seenn2.{k}" for k in ("train_split", "sample_weighting", "estimator", "reward_base", "epochs",
                                                  "batch_size", "lr", "momentum", "weight_decay", "policy_stem_channels",
                                                  "policy_widths", "policy_stem_stride"))


def declare_rule(branch, out: str, suffix: str, variant: str, compare: bool) -> list:
    """SEENN-II on one SNN branch with one training rule (`VARIANTS`): one policy per beta trained
    on the branch's saved per-timestep correctness, its test evaluation with operation counts and
    SEENN-I at the same validation cost (and the main-beta policy alone, role 'policy', for the
    engine), and optionally the estimator x training-split comparison."""
    from .dag import RUNTIME_KEYS, Stage, split_paths

    s, d = split_paths(), branch.dir
    logits = {f"logits_{k}": f"{d}/logits_{k}.pt" for k in ("train", "val", "test")}
    opts = {"variant": variant}
    stages = [
        Stage(name=f"seenn2_train{suffix}", run=stage_seenn2_train,
              desc=f"SEENN-II: train one policy network per beta on the {branch.name} SNN's saved per-timestep "
                   f"correctness ({variant} rule)",
              params=RUNTIME_KEYS + SEENN2_TRAIN_KEYS + ("seenn2.betas",),
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
                  params=RUNTIME_KEYS + SEENN2_TRAIN_KEYS + ("seenn2.beta",),
                  inputs={**s, **logits, "policies": f"{out}/policies.pt", "policy_log": f"{out}/policy_log.csv"},
                  outputs={"compare": f"{out}/compare.csv", "log": f"{out}/compare_log.csv"},
                  plots=("log",), checkpoints=True, threads="all"))
    return stages


def declare(branch) -> list:
    """SEENN-II stages of one branch: one training rule writing to `branch.seenn2_out`, or several,
    each a stage pair writing to <out>/<rule>/, then `seenn2_select_<branch>`, which picks one on
    the validation split (`<section>.seenn2_variant`) and writes it as the branch's SEENN-II."""
    from .dag import Stage

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
