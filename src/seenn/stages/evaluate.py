"""Per-timestep evaluation: run an SNN once on validation and test (and, where the stage asks for
it, the train split: SEENN-II can train its policy there) and save the accumulated logits
z [N, T, K] with labels. Every later metric reads these files instead of rerunning."""

from __future__ import annotations

import torch

from seenn.common.artifacts import save_logits
from seenn.common.io import write_json
from seenn.data.files import open_split
from seenn.loops.predict import load_snn, predict_logits
from seenn.methods.metrics import accuracy_per_t, aet, correctness, empirical_aet, kept_timesteps, oracle


def summarize(logits: torch.Tensor, labels: torch.Tensor, kept: list[int] | None = None, T: int | None = None) -> dict:
    """Accuracy at each fixed t, AET, empirical AET and the oracle, for one split; with `kept`
    (logits at those timesteps of T only) the accuracy at each kept t alone: AET, empirical AET
    and the oracle need every timestep."""
    c = correctness(logits, labels)
    if kept is not None:
        return {"n": int(labels.numel()), "timesteps": int(T), "kept_timesteps": list(kept),
                "accuracy_per_kept_t": accuracy_per_t(c)}
    o_acc, o_t = oracle(c)
    return {"n": int(labels.numel()), "timesteps": int(logits.shape[1]), "accuracy_per_t": accuracy_per_t(c),
            "aet": aet(c), "empirical_aet": empirical_aet(c), "oracle_accuracy": o_acc, "oracle_timesteps": o_t}


def stage_evaluate_snn(ctx) -> None:
    """Stage evaluate_<branch>: trained SNN -> logits_{val,test}.pt (+ logits_train.pt when the
    stage declares the train split as an input) + metrics.json."""
    splits = [s for s in ("train", "val", "test") if s in ctx.inputs]
    data = {s: open_split(ctx.inputs[s]) for s in splits}
    spec = data["val"].spec
    model, ck = load_snn(ctx.inputs["model"], spec)
    model.to(ctx.device)
    T = ck["timesteps"]
    bs = ctx.params["evaluate"]["batch_size"]
    key = ctx.extras.get("keep_key")
    section, _, name = key.partition(".") if key else (None, None, None)
    kept = kept_timesteps(ctx.params[section][name], T) if key else None
    metrics = {"device": ctx.device.type, "dataset": spec.name, "timesteps": T}
    for split in splits:
        src = data[split]
        z = predict_logits(model, src, T, bs, ctx.device, desc=f"evaluate {split}", stepwise=ck.get("stepwise", False),
                           loader=ctx.params["loader"], keep=kept)
        save_logits(ctx.outputs[f"logits_{split}"], z, src.y, kept=kept, timesteps=T)
        metrics[split] = summarize(z, src.y, kept, T)
    write_json(ctx.outputs["metrics"], metrics)


def declare(branch):
    """Per-timestep logits of one SNN branch (with the train split's when SEENN-II trains on them)."""
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import split_paths

    d, s = branch.dir, split_paths()
    extra_in = {"train": s["train"]} if branch.train_logits else {}
    extra_out = {"logits_train": f"{d}/logits_train.pt"} if branch.train_logits else {}
    return Stage(name=f"evaluate_{branch.name}", run=stage_evaluate_snn,
                 desc=f"per-timestep logits of the {branch.name} SNN on {'train, ' if branch.train_logits else ''}val and test",
                 params=("device", "deterministic", "loader", "evaluate") + ((branch.keep_key,) if branch.keep_key else ()),
                 options={"keep_key": branch.keep_key} if branch.keep_key else {},
                 inputs={"model": branch.model, **extra_in, "val": s["val"], "test": s["test"]},
                 outputs={**extra_out, "logits_val": f"{d}/logits_val.pt", "logits_test": f"{d}/logits_test.pt",
                          "metrics": f"{d}/metrics.json"}, threads="all")
