"""Stage prepare_data: configured dataset -> data/prepared/{train,val,test}.pt + manifest.json."""

from __future__ import annotations

import logging
from pathlib import Path

from seenn.data.prepared import prepare

log = logging.getLogger("seenn")


def stage_prepare_data(ctx) -> None:
    manifest = prepare(ctx.params["data"], ctx.params["seed"], Path(ctx.outputs["manifest"]).parent)
    for split, info in manifest["splits"].items():
        log.info("%s: %d samples, per class %s", split, info["n"], info["counts_per_class"])


def declare(split_list: str | None = None):
    """The data stage; `split_list` (the config's `data.split_list`, when set) is its input, so
    editing the user's CIFAR10-DVS split list reruns it (and what follows) under both tools."""
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import PREPARED, split_paths

    return Stage(name="prepare_data", run=stage_prepare_data,
                 desc="load, shuffle and split the dataset; write checked split files and a manifest",
                 params=("seed", "data"), inputs={"split_list": split_list} if split_list else {},
                 outputs={**split_paths(), "manifest": f"{PREPARED}/manifest.json"})
