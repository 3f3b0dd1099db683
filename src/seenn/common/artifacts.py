"""Every result file a stage saves: what each holds, and its save and checked load (io.py is the
atomic, sha256-checked layer underneath; the prepared splits' format is data.files). Loads return file contents; rebuilding a network from them is
the caller's (loops.predict.load_snn, methods.conversion.load_ann,
methods.policy.loading.load_policies).

| file                                   | kind        | holds                                                          |
|----------------------------------------|-------------|----------------------------------------------------------------|
| results/*/snn.pt (trained, fine-tuned) | "snn"       | state_dict, model and neuron config, timesteps, dataset, classes |
| results/converted/snn.pt               | "converted" | state_dict, model config, levels, timesteps, stepwise, dataset, classes (+ init_fraction after RMP) |
| results/converted/ann.pt               | "qcfs_ann"  | state_dict, model config, levels, dataset, classes             |
| results/converted/ann.pt (rmp)         | "relu_ann"  | state_dict, model config, dataset, classes                     |
| results/*/logits_{split}.pt            | logits      | logits z [N, T, K] (accumulated), labels [N]                   |
| results/**/policies.pt, policy.pt      | "policies"  | entries (beta, estimator, split, weighting, variant, r_t1, state_dict), architecture, T, grid, dataset |
| results/checkpoints/<stage>/epoch_NNNN.pt | epoch    | fingerprint, epoch, model, optimizer, scheduler, rng, rows     |
| *_log.csv, sweep/compare/variants CSVs | CSV         | one row per dict, floats as %.6f (training log: TRAIN_LOG_COLUMNS) |
| metrics/seenn1/seenn2/ann_metrics JSON | JSON        | io.write_json: sorted keys, indent 2, trailing newline         |"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from seenn.common.errors import SeennError
from seenn.common.io import load_checked, save_checked, write_text

SNN_KIND = "snn"  # direct training or fine-tuning (LIF neurons)
CONVERTED_KIND = "converted"  # ANN (QCFS or ReLU) -> IF neurons
SNN_KINDS = (SNN_KIND, CONVERTED_KIND)  # what an SNN checkpoint may be
ANN_KIND = "qcfs_ann"
RELU_ANN_KIND = "relu_ann"  # the plain ReLU ANN of RMP conversion (conversion.method: rmp)
ANN_KINDS = {"qcfs": ANN_KIND, "rmp": RELU_ANN_KIND}  # conversion.method -> the kind of its ANN checkpoint
POLICIES_KIND = "policies"
TRAIN_LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc")  # one row per epoch


def check_trained_on(ck: dict, spec, path, what: str, rerun: str) -> None:
    """Refuse a checkpoint made for another dataset (name, and class count when it records one)."""
    classes = ck.get("num_classes")
    if ck["dataset"] != spec.name or (classes is not None and classes != spec.num_classes):
        made = f"'{ck['dataset']}'" + (f" ({classes} classes)" if classes is not None else "")
        raise SeennError(f"{what} {path} was trained on {made}, but the data is '{spec.name}' "
                         f"({spec.num_classes} classes): {rerun}")


def load_weights(model: torch.nn.Module, state_dict: dict, path, what: str) -> None:
    """`model.load_state_dict`, with a mismatch reported as one line naming the file."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise SeennError(f"{what} {path} does not fit the architecture it names: {first[0] if first else exc}") from None


def _load_kind(path, kinds: tuple[str, ...], *, what: str, producer: str, a_what: str, rerun: str) -> dict:
    """A `save_checked` file whose 'kind' is one of `kinds`; errors name the file."""
    obj = load_checked(path, what=what, producer=producer)
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind not in kinds:
        raise SeennError(f"{path} is not {a_what} (kind={kind!r}): delete it and rerun {rerun}")
    return obj


def save_snn(path, model, *, model_cfg: dict, neuron_cfg: dict, timesteps: int, spec) -> None:
    """Kind 'snn': everything needed to rebuild the network without the config."""
    save_checked(path, {"kind": SNN_KIND, "state_dict": model.state_dict(), "model": model_cfg, "neuron": neuron_cfg,
                        "timesteps": timesteps, "dataset": spec.name, "num_classes": spec.num_classes})


def save_converted(path, snn, *, model_cfg: dict, levels: int | None, timesteps: int, spec,
                   init_fraction: float = 0.5) -> None:
    """Kind 'converted': `timesteps` is what the evaluate stage runs, one step at a time
    (`stepwise`: a long T would otherwise hold T x batch activations in memory at once);
    `init_fraction` the IF membrane's start as a share of the threshold, recorded only where it is
    not QCFS's 0.5 (so a QCFS file keeps its bytes); `levels` None after RMP (no quantization)."""
    extra = {} if init_fraction == 0.5 else {"init_fraction": float(init_fraction)}
    save_checked(path, {"kind": CONVERTED_KIND, "state_dict": snn.state_dict(), "model": model_cfg, "levels": levels,
                        "timesteps": timesteps, "stepwise": True, "dataset": spec.name, "num_classes": spec.num_classes,
                        **extra})


def load_snn_checkpoint(path, spec) -> dict:
    """The contents of an SNN checkpoint (kind 'snn' or 'converted') made for `spec`'s dataset."""
    ck = _load_kind(path, SNN_KINDS, what="SNN checkpoint", producer="the training stage",
                    a_what="an SNN checkpoint", rerun="its stage")
    check_trained_on(ck, spec, path, "SNN checkpoint", "rerun training")
    return ck


def save_ann(path, model, *, model_cfg: dict, levels: int | None, spec, method: str = "qcfs") -> None:
    """Everything needed to rebuild the ANN without the config: kind 'qcfs_ann' (with its levels),
    or 'relu_ann' for `method` rmp (no levels)."""
    levels_entry = {"levels": levels} if method == "qcfs" else {}
    save_checked(path, {"kind": ANN_KINDS[method], "state_dict": model.state_dict(), "model": model_cfg,
                        **levels_entry, "dataset": spec.name, "num_classes": spec.num_classes})


def ann_method(ck: dict) -> str:
    """The conversion.method an ANN checkpoint was trained for (qcfs or rmp)."""
    return next(m for m, kind in ANN_KINDS.items() if kind == ck["kind"])


def load_ann_checkpoint(path, spec) -> dict:
    """The contents of an ANN checkpoint (QCFS or ReLU) made for `spec`'s dataset."""
    ck = _load_kind(path, tuple(ANN_KINDS.values()), what="ANN checkpoint", producer="the train_ann stage",
                    a_what="an ANN checkpoint", rerun="train_ann")
    check_trained_on(ck, spec, path, "ANN checkpoint", "rerun train_ann")
    return ck


def save_policies(path, entries: list[dict], *, cfg: dict, in_channels: int, timesteps: int, grid: list[int],
                  dataset: str) -> None:
    """Kind 'policies': entries [{"beta", "estimator", "train_split", "sample_weighting", "variant",
    "r_t1", "state_dict"}] plus what rebuilds them (architecture, the SNN's T, the action grid)."""
    save_checked(path, {"kind": POLICIES_KIND, "entries": entries, "in_channels": in_channels, "actions": timesteps,
                        "action_grid": list(grid), "dataset": dataset,
                        **{k: cfg[k] for k in ("policy_stem_channels", "policy_stem_stride")},
                        "policy_widths": list(cfg["policy_widths"])})


def load_policy_file(path) -> dict:
    """The contents of a SEENN-II policy file."""
    return _load_kind(path, (POLICIES_KIND,), what="SEENN-II policies", producer="the seenn2_train stage",
                      a_what="a SEENN-II policy file", rerun="seenn2_train")


LOGITS_PRODUCER = "the evaluate stage"


KEEP_KEY = "conversion.keep_timesteps"  # the key that keeps only some timesteps' logits


def save_logits(path, logits: torch.Tensor, labels: torch.Tensor, kept: list[int] | None = None, timesteps: int | None = None) -> None:
    """Accumulated logits [N, T, K] and labels; with `kept` (1-based, KEEP_KEY) the logits hold those
    timesteps of `timesteps` only, [N, len(kept), K], and the file records which."""
    obj = {"logits": logits.contiguous(), "labels": labels.contiguous()}
    if kept is not None:
        obj.update(kept_timesteps=list(kept), timesteps=int(timesteps))
    save_checked(path, obj)


def load_logits(path, every: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(accumulated logits [N, T, K], labels [N]). A file holding only some timesteps (KEEP_KEY) is
    refused unless `every` is false (then its logits are [N, kept, K]: `kept_logits` says which)."""
    obj = load_checked(path, what="per-timestep logits", producer=LOGITS_PRODUCER)
    if not isinstance(obj, dict) or "logits" not in obj or "labels" not in obj:
        raise SeennError(f"{path} is not a per-timestep logits file (no logits and labels): delete it and rerun "
                         f"{LOGITS_PRODUCER}")
    if every and "kept_timesteps" in obj:
        raise SeennError(f"{path} holds the logits of {len(obj['kept_timesteps'])} of {obj['timesteps']} timesteps "
                         f"('{KEEP_KEY}'), and this reads every timestep's: set {KEEP_KEY} empty (every timestep)")
    return obj["logits"], obj["labels"]


def epoch_checkpoint_path(ckpt_dir, epoch: int) -> Path:
    return Path(ckpt_dir) / f"epoch_{epoch:04d}.pt"


def epoch_checkpoints(ckpt_dir) -> list[Path]:
    """The epoch checkpoints in `ckpt_dir`, oldest first."""
    return sorted(Path(ckpt_dir).glob("epoch_*.pt")) if Path(ckpt_dir).is_dir() else []


def save_epoch_checkpoint(ckpt_dir, epoch: int, state: dict, keep: int) -> None:
    """Write epoch `epoch`'s state, then delete all but the `keep` newest checkpoints."""
    save_checked(epoch_checkpoint_path(ckpt_dir, epoch), state)
    for old in epoch_checkpoints(ckpt_dir)[:-keep]:
        old.unlink()


def load_epoch_checkpoint(path) -> dict:
    return load_checked(path, what="checkpoint", producer="the training stage (delete the checkpoint directory to start over)")


def write_csv(path, rows) -> None:
    """A table (list of dicts or DataFrame) as CSV: no index, floats as %.6f."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    write_text(path, frame.to_csv(index=False, float_format="%.6f"))


def write_train_log(path, rows: list[dict]) -> None:
    """The per-epoch training log; no epochs (training switched off): the header alone."""
    if rows:
        write_csv(path, rows)
    else:
        write_text(path, ",".join(TRAIN_LOG_COLUMNS) + "\n")


def copy_text(src, dst) -> None:
    """`dst` as a byte-for-byte copy of text file `src` (a chosen variant's table as the branch's)."""
    write_text(dst, Path(src).read_text())


def read_csv(path) -> pd.DataFrame:
    if not Path(path).exists():
        raise SeennError(f"missing table {path}: run the stage that produces it first")
    return pd.read_csv(path)
