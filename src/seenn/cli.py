"""`seenn`: the only entry point the DAG calls.

    seenn run <stage> [--config params.yaml] [--gpus N]
                                               run one stage (declared beside its code; table: src/seenn/pipeline/table.py);
                                               N > 1: a training stage reruns itself under torchrun, N processes
    seenn validate [--config FILE]             validate a config and exit
    seenn config use [OVERLAY]                 write params.yaml: config/defaults.yaml + the overlay (if any),
                                               and dvc.yaml beside it from that config's stage table
    seenn dvc-yaml [--check] [--config FILE]   write (or check) dvc.yaml from the stage table of params.yaml
    seenn stages [--config FILE]               list the stages of params.yaml
    seenn data split-list ROOT [--output FILE] write a CIFAR10-DVS split list (the committed 9:1 per-class
                                               rule) for the recordings under ROOT/CIFAR10DVS; print its sha256
    seenn readme-results                       rewrite the README's results blocks from the default run's
                                               tables (each table's md5 checked against dvc.lock)"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from seenn.common.errors import SeennError, out_of_memory
from seenn.data import split_list
from seenn.pipeline.config import DEFAULT_CONFIG, load_config, select_keys

# torch and the stage machinery load in `seenn run` alone: `seenn validate`, `seenn data
# split-list` and the help answer in a fraction of a second instead of after torch's 3 s import.


def _setup_logging(stage: str, log_file: str | None) -> None:
    """Log lines to stderr and the stage's log file; under torchrun rank 0 alone writes the file
    and other ranks print warnings only, tagged with their rank."""
    from seenn.common import distributed

    tag = stage if distributed.world_size() == 1 else f"{stage} rank {distributed.rank()}"
    fmt = logging.Formatter(f"%(asctime)s [{tag}] %(levelname)s %(message)s", "%H:%M:%S")
    root = logging.getLogger("seenn")
    root.setLevel(logging.INFO if distributed.is_main() else logging.WARNING)
    root.handlers.clear()
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    root.addHandler(err)
    if log_file and distributed.is_main():
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="a")
        fh.setFormatter(fmt)
        root.addHandler(fh)


def _launch(st, gpus: int, config_path: str) -> bool:
    """Give the stage its GPUs: `gpus` slots of SEENN_GPU_SLOTS when set (CUDA_VISIBLE_DEVICES),
    then, for a data-parallel stage given more than one, run it under torchrun as a child and
    return True (the stage ran there; a rank of torchrun never relaunches)."""
    from seenn.common import distributed
    from seenn.pipeline import gpu_slots

    log = logging.getLogger("seenn")
    if distributed.world_size() > 1:
        return False
    if gpus > 1 and not st.data_parallel:
        log.warning("stage %s is not data-parallel: it runs as one process on the first of its %d GPUs", st.name, gpus)
    gpu_slots.acquire(gpus if st.data_parallel else 1)
    if gpus > 1 and st.data_parallel:
        log.info("relaunching under torchrun: %d processes", gpus)
        distributed.run_under_torchrun(st.name, gpus, ["run", st.name, "--config", config_path])
        return True
    return False


def batch_keys(st, config: dict) -> dict[str, object]:
    """The batch-size keys among what stage `st` declares (a key, or a section's keys), with their
    values: what to lower when it runs out of memory."""
    from seenn.pipeline.config import get_key

    out: dict[str, object] = {}
    for key in st.params:
        value = get_key(config, key)
        names = [f"{key}.{k}" for k in value] if isinstance(value, dict) else [key]
        out.update({n: get_key(config, n) for n in names if n.rsplit(".", 1)[-1] in ("batch_size", "batch_sizes")
                    or n.endswith("_batch_size")})
    return out


def run_stage(name: str, config_path: str = DEFAULT_CONFIG, gpus: int = 1) -> None:
    import torch

    from seenn.common import distributed, runtime
    from seenn.pipeline import snakemake_records
    from seenn.pipeline.config import apply_overrides
    from seenn.pipeline.table import build_stages, dvc_yaml_drift, write_params_file
    from seenn.stages.declaration import StageContext

    config = load_config(config_path)
    by_name = {st.name: st for st in build_stages(config)}  # the table of this config
    if name not in by_name:
        raise SeennError(f"unknown stage '{name}' for {config_path}; stages: {', '.join(by_name)}")
    st = by_name[name]
    drift = dvc_yaml_drift(list(by_name.values()))
    if drift:
        raise SeennError(f"dvc.yaml does not match the stage table of {config_path} ({drift}): run `seenn dvc-yaml` "
                         f"(or `seenn config use`) before running stages")
    if gpus < 1:
        raise SeennError(f"seenn run {name}: --gpus must be at least 1, got {gpus}")
    _setup_logging(name, st.log_file)
    log = logging.getLogger("seenn")
    write_params_file(st, config)
    config = apply_overrides(config, st.overrides)  # a seed's own stage sees its seed
    for role, path in st.inputs.items():
        if not Path(path).exists():
            raise SeennError(f"stage {name}: input '{role}' ({path}) is missing: run the stage that produces it first")
    if _launch(st, gpus, config_path):
        return
    # TF32 off: a training loop switches it on for its steps alone (train.tf32), every other stage runs float32
    device = runtime.setup(config["seed"], config["deterministic"], config["device"], config["cpu_kernels"], tf32=False)
    device = distributed.init(device)
    if config["requires_gpu"] and "gpu" in st.resources and device.type != "cuda" and config["device"] != "cpu":
        raise SeennError(f"stage {name}: this config needs a GPU (requires_gpu: true, a paper row) but no CUDA device is "
                         f"available: run it on a GPU machine, or set device: cpu to run it on the CPU anyway")
    ctx = StageContext(name=name, params=select_keys(config, st.params), inputs=dict(st.inputs),
                       outputs=dict(st.outputs), device=device, checkpoint_dir=Path(st.checkpoint_dir),
                       extras=dict(st.options))
    start = time.perf_counter()
    log.info("start on %s (%d threads, %s CPU kernels%s)", device, torch.get_num_threads(), config["cpu_kernels"],
             f", {distributed.world_size()} processes" if distributed.world_size() > 1 else "")
    try:
        st.run(ctx)
    except torch.cuda.OutOfMemoryError as exc:
        raise out_of_memory(name, batch_keys(st, config), exc) from None
    distributed.finish()
    if not distributed.is_main():
        return
    missing = [p for p in st.outputs.values() if not Path(p).exists()]
    if missing:
        raise SeennError(f"stage {name} finished without writing {', '.join(missing)}")
    snakemake_records.forget(st.outputs.values())
    log.info("done in %.1f s", time.perf_counter() - start)


def _split_list(root: str, output: str) -> None:
    """`seenn data split-list`: write the list and say how to pin it."""
    from seenn.data.cifar10dvs import FOLDER, write_split_list

    digest, counts = write_split_list(root, output)
    print(f"wrote {output}: {sum(counts.values())} recordings under {Path(root) / FOLDER} "
          f"({counts['train']} train, {counts['test']} test)")
    print(f"sha256 {digest}")
    print(f"use it: data.split_list: {output} and data.split_list_sha256: {digest} (config/defaults.yaml or an "
          f"overlay, then `seenn config use`)")


def lock_outs(lock: str | Path) -> dict[str, str]:
    """path -> md5 of every out (outs, metrics, plots) dvc.lock records."""
    import yaml

    stages = yaml.safe_load(Path(lock).read_text())["stages"]
    return {o["path"]: o["md5"] for st in stages.values() for kind in ("outs", "metrics", "plots")
            for o in st.get(kind, [])}


def _readme_results(readme_path: str, config_path: str, lock: str) -> None:
    """Rewrite the README's results blocks from the default run in this directory, refusing a run of
    another config or one whose tables dvc.lock does not record."""
    from seenn.common.config_source import SOURCE_KEY, edited_by_hand
    from seenn.common.io import write_text
    from seenn.report import readme

    config = load_config(config_path)
    if config[SOURCE_KEY]["overlay"] or edited_by_hand(config):
        raise SeennError(f"{config_path} is not the default config (an overlay or a hand edit): the README's results "
                         "are the default run's; run `seenn config use`, then the DAG")
    try:
        blocks = readme.build(".", config["seenn2"]["beta"])
    except (FileNotFoundError, KeyError) as exc:
        raise SeennError(f"cannot build the README blocks: {exc}") from exc
    outs = lock_outs(lock)
    for name, block in blocks.items():
        for path, md5 in readme.parse(block)[name]["tables"].items():
            if outs.get(path) != md5:
                raise SeennError(f"{lock} does not record this run's {path} (md5 {md5}, lock {outs.get(path)}): "
                                 "run `dvc commit` after the run, then this command")
    text = Path(readme_path).read_text()
    try:
        new = readme.replace(text, blocks)
    except KeyError as exc:
        raise SeennError(f"{readme_path}: {exc.args[0]}") from exc
    write_text(readme_path, new)
    print(f"wrote the {', '.join(blocks)} results blocks of {readme_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seenn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run one stage")
    p_run.add_argument("stage")
    p_run.add_argument("--config", default=DEFAULT_CONFIG)
    p_run.add_argument("--gpus", type=int, default=1, help="GPUs (processes) the stage may use; more than one runs "
                       "a training stage under torchrun (the Snakemake rule passes its `gpu` resource)")
    p_val = sub.add_parser("validate", help="validate a config file")
    p_val.add_argument("--config", default=DEFAULT_CONFIG)
    p_cfg = sub.add_parser("config", help="write params.yaml from the defaults and an overlay")
    cfg_sub = p_cfg.add_subparsers(dest="config_cmd", required=True)
    p_use = cfg_sub.add_parser("use", help="write params.yaml as config/defaults.yaml with OVERLAY applied")
    p_use.add_argument("overlay", nargs="?", help="a file holding only what differs from the defaults, e.g. "
                       "config/paper/resnet19_cifar10.yaml (none: the defaults as they are)")
    p_use.add_argument("--defaults", default="config/defaults.yaml")
    p_use.add_argument("--output", default=DEFAULT_CONFIG)
    p_dvc = sub.add_parser("dvc-yaml", help="write dvc.yaml from the stage table")
    p_dvc.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml differs from the table")
    p_dvc.add_argument("--config", default=DEFAULT_CONFIG, help="the config whose stage table it is")
    p_st = sub.add_parser("stages", help="list the stages of a config")
    p_st.add_argument("--config", default=DEFAULT_CONFIG)
    p_readme = sub.add_parser("readme-results", help="rewrite the README's results blocks from the default run's "
                              "tables (checked against dvc.lock)")
    p_readme.add_argument("--readme", default="README.md")
    p_readme.add_argument("--config", default=DEFAULT_CONFIG)
    p_readme.add_argument("--lock", default="dvc.lock", help="the lock whose outs must record the tables read")
    p_data = sub.add_parser("data", help="dataset helpers")
    data_sub = p_data.add_subparsers(dest="data_cmd", required=True)
    p_split = data_sub.add_parser("split-list", help="write a CIFAR10-DVS split list for your copy of the dataset "
                                  "and print its sha256 (for data.split_list and data.split_list_sha256)")
    p_split.add_argument("root", help="the data.root holding CIFAR10DVS/<class>/*.aedat4")
    p_split.add_argument("--output", default=split_list.DEFAULT_OUTPUT,
                         help=f"the list to write (default {split_list.DEFAULT_OUTPUT}); the committed one is refused")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "run":
            run_stage(args.stage, args.config, args.gpus)
        elif args.cmd == "validate":
            from seenn.common.config_source import edited_by_hand
            from seenn.pipeline.gpu_slots import configured_slots

            edited = edited_by_hand(load_config(args.config))
            configured_slots()  # a SEENN_GPU_SLOTS that CUDA would not understand
            print(f"{args.config}: valid" + ("; its values were edited by hand since `seenn config use` wrote it "
                                             "(the report flags that)" if edited else ""))
        elif args.cmd == "config":
            from seenn.pipeline.overlay import use

            use(args.overlay, args.defaults, args.output)
            print(f"wrote {args.output} from {args.defaults}" + (f" with {args.overlay}" if args.overlay else "")
                  + f", and {Path(args.output).parent / 'dvc.yaml'} from its stage table")
        elif args.cmd == "dvc-yaml":
            from seenn.pipeline.table import dvc_yaml, stages_of

            text, path = dvc_yaml(stages_of(args.config)), Path("dvc.yaml")
            if args.check:
                if not path.exists() or path.read_text() != text:
                    print(f"dvc.yaml is out of date with src/seenn/pipeline/table.py and {args.config}: run `seenn dvc-yaml`",
                          file=sys.stderr)
                    return 1
                print("dvc.yaml matches the stage table")
            else:
                from seenn.common.io import write_text

                write_text(path, text)
                print("wrote dvc.yaml")
        elif args.cmd == "stages":
            from seenn.pipeline.table import stages_of

            for st in stages_of(args.config):
                print(f"{st.name:20s} {st.desc}")
        elif args.cmd == "readme-results":
            _readme_results(args.readme, args.config, args.lock)
        elif args.cmd == "data":
            _split_list(args.root, args.output)
    except SeennError as exc:
        print(f"seenn: error: {exc}", file=sys.stderr)
        logging.getLogger("seenn").handlers.clear()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
