"""Keep Snakemake's rerun decisions right when a stage was run by DVC instead.

Snakemake (>= 9.18) records, per output, checksums of the inputs it was built from, and skips a
rerun when an input is newer but its checksum equals the recorded one. After `dvc repro` rebuilt
an output, that record describes an older build and can hide a needed rerun (e.g. a setting
changed, run by DVC, then changed back). So every `seenn run` drops the records of the outputs it
rewrites: Snakemake then decides by timestamps, and writes a fresh record itself when it is the
one running the stage (it records after the job exits). Layout as in snakemake.persistence.file."""

from __future__ import annotations

import os
from base64 import urlsafe_b64encode
from pathlib import Path

METADATA_DIR = Path(".snakemake") / "metadata"


def record_path(output: str, root: Path = METADATA_DIR) -> Path:
    """Where Snakemake keeps the metadata record of `output` (a path relative to the workdir)."""
    try:
        max_len = os.pathconf(root, "PC_NAME_MAX") if root.exists() else 255
    except (OSError, ValueError):
        max_len = 255
    b64 = urlsafe_b64encode(output.encode()).decode()
    parts = [b64[i : i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
    parts = ["@" + p for p in parts[:-1]] + [parts[-1]]
    return root.joinpath(*parts)


def forget(outputs) -> list[str]:
    """Delete Snakemake's records for `outputs`; return those that existed."""
    removed = []
    for out in outputs:
        path = record_path(str(out))
        if path.is_file():
            path.unlink()
            removed.append(str(out))
    return removed
