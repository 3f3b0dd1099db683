"""Stage prepare_data: configured dataset -> data/prepared/{train,val,test}.pt + manifest.json."""

from __future__ import annotations

import logging
from pathlib import Path

from .prepared import prepare

log = logging.getLogger("seenn")


def stage_prepare_data(ctx) -> None:
    manifest = prepare(ctx.params["data"], ctx.params["seed"], Path(ctx.outputs["manifest"]).parent)
    for split, info in manifest["splits"].items():
        log.info("%s: %d samples, per class %s", split, info["n"], info["counts_per_class"])
