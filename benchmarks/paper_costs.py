"""What each paper row costs: dense MACs per sample (counted on the real networks at the real
input size by `seenn.snn.ops`), the training FLOPs of its whole DAG, and the hours that would take on
one GPU at an assumed sustained throughput. Prints a Markdown table (the README's cost table).

    python benchmarks/paper_costs.py                     # every config/paper/<row>.yaml
    python benchmarks/paper_costs.py --tflops 50 --rows resnet19_cifar10
    python benchmarks/paper_costs.py --measured gpu_check.json   # measured hours where the GPU check ran

`--measured` reads the JSON of `benchmarks/gpu_check.py --json` (its training section, run on a
GPU, not `--quick`): a row the check has timed prints its measured hours (the whole DAG at the
step time measured for `train_snn`), naming the GPU and the commit; every other cell stays
marked as an estimate.

Estimated, not measured: FLOPs = 2 x MACs; a training step costs 3 forward passes (forward +
backward); an SNN timestep costs its dense MACs whatever the spike sparsity (GPUs compute
densely); the stem of a static image runs once per sample. Hours = FLOPs / (--tflops x 1e12) /
3600: SNN training is bound by memory traffic of the elementwise neuron updates as much as by
its convolutions, so the default 50 TFLOP/s (bf16 AMP on an A100/H100-class GPU at a few tens of
percent of its peak) is a guess until `benchmarks/gpu_check.py` has timed the architectures on a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seenn.data.registry import get_spec  # noqa: E402
from seenn.models import build_snn  # noqa: E402
from seenn.models.policy import build_policy  # noqa: E402
from seenn.pipeline.config import StrictLoader, validate_config  # noqa: E402
from seenn.pipeline.overlay import compose  # noqa: E402
from seenn.snn.ops import ann_macs, snn_macs  # noqa: E402

# training images per dataset (before the validation split is carved off) and test images
POOL = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "imagenet": (1_281_167, 50_000),
        "cifar10dvs": (9_000, 1_000)}
FLOPS_PER_MAC, TRAIN_PASSES = 2, 3


def row_config(path: Path) -> dict:
    return validate_config(yaml.load(compose(path, ROOT / "config/defaults.yaml", root=ROOT), Loader=StrictLoader))


def row_costs(cfg: dict) -> dict:
    """MACs per sample and the DAG's training and evaluation FLOPs for one row's config."""
    spec = get_spec(cfg["data"]["name"])
    pool, n_test = POOL[spec.name]
    n_val = n_test if cfg["data"].get("protocol") == "authors" else cfg["data"]["val_size"]
    n_train = pool if cfg["data"].get("protocol") == "authors" else pool - n_val
    t, c, f, s = cfg["train"], cfg["conversion"], cfg["finetune"], cfg["seenn2"]
    T = t["timesteps"]
    snn = build_snn(cfg["model"], cfg["neuron"], spec.input_shape[-3], spec.num_classes, event=spec.event,
                    image_size=spec.input_shape[-1])
    m = snn_macs(snn, spec.input_shape)
    per_sample = m["fixed"] + T * m["per_timestep"]  # one inference at fixed T
    pol = build_policy(spec.input_shape[-3], T, s["policy_stem_channels"], s["policy_widths"], s["policy_stem_stride"])
    policy_macs = ann_macs(pol, spec.input_shape[-3:])["macs"]  # event data: the policy sees the mean frame
    flops = {}
    flops["train_snn"] = t["epochs"] * n_train * per_sample * TRAIN_PASSES * FLOPS_PER_MAC
    flops["finetune_snn"] = f["epochs"] * n_train * per_sample * TRAIN_PASSES * FLOPS_PER_MAC
    # evaluation: the direct SNN on val + test, the fine-tuned one on train + val + test (its policy's data)
    flops["evaluate"] = (2 * n_val + 2 * n_test + n_train) * per_sample * FLOPS_PER_MAC
    n_policies = len(s["betas"]) + 6  # one per beta, and the estimator / split / weighting comparison cells
    flops["seenn2"] = n_policies * s["epochs"] * n_train * policy_macs * TRAIN_PASSES * FLOPS_PER_MAC
    if c["enabled"]:
        ann = m["fixed"] + m["per_timestep"]
        flops["train_ann"] = c["epochs"] * n_train * ann * TRAIN_PASSES * FLOPS_PER_MAC
        Tc = c["max_timesteps"]
        flops["evaluate_converted"] = (n_train + n_val + n_test) * (m["fixed"] + Tc * m["per_timestep"]) * FLOPS_PER_MAC
        flops["seenn2_converted"] = 4 * len(s["betas"]) * s["epochs"] * n_train * policy_macs * TRAIN_PASSES * FLOPS_PER_MAC
    return {"macs_per_timestep": m["per_timestep"], "macs_fixed": m["fixed"], "macs_per_sample": per_sample,
            "policy_macs": policy_macs, "flops": flops, "total_flops": sum(flops.values())}


def measured_hours(paths: list[str]) -> dict[str, str]:
    """Row id -> "hours (measured on GPU, commit)" from GPU check JSON files: training rows that
    ran on a GPU (not --quick) and finished."""
    out = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        if data.get("quick") or data.get("device", "CPU") == "CPU":
            continue  # a quick or CPU check times a narrow stand-in, not the row
        commit = data.get("commit") or "commit unknown"
        for r in data["rows"]:
            if r.get("section") == "train" and r.get("ok") and r.get("hours") is not None and " (" in r["what"]:
                out[r["what"].split(" (")[0]] = f"**{r['hours']:.1f}** (measured on {data['device']}, {commit[:7]})"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tflops", type=float, default=50.0, help="assumed sustained TFLOP/s of one GPU")
    ap.add_argument("--rows", nargs="*", help="row ids (config/paper/<row>.yaml); default: all")
    ap.add_argument("--measured", nargs="*", default=[], help="gpu_check.py --json files: measured hours where they ran")
    args = ap.parse_args(argv)
    measured = measured_hours(args.measured)
    paths = sorted(p for p in (ROOT / "config/paper").glob("*.yaml")
                   if p.name != "numbers.yaml" and not p.stem.startswith("teas_"))
    if args.rows:
        paths = [p for p in paths if p.stem in args.rows]
    print(f"| paper row | T (direct / converted) | MACs / sample (fixed T) | of which per timestep | DAG training + evaluation FLOPs | "
          f"hours on one GPU (measured where the GPU check ran; else estimated at {args.tflops:g} TFLOP/s) |")
    print("|---|---|---|---|---|---|")
    for p in paths:
        cfg = row_config(p)
        r = row_costs(cfg)
        conv_t = cfg["conversion"]["max_timesteps"] if cfg["conversion"]["enabled"] else "off"
        estimate = f"{r['total_flops'] / (args.tflops * 1e12) / 3600:.0f} (estimate)"
        print(f"| `{p.stem}` | {cfg['train']['timesteps']} / {conv_t} | {r['macs_per_sample'] / 1e9:.3g} G | "
              f"{r['macs_per_timestep'] / 1e9:.3g} G | {r['total_flops']:.2e} | "
              f"{measured.get(p.stem, estimate)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
