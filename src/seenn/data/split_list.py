"""The CIFAR10-DVS split list a config uses: the committed one (pinned in seenn.data.cifar10dvs)
or the user's own (`data.split_list`, pinned by `data.split_list_sha256`), read and checked.

Free of torch, so the config check (run by Snakemake when it parses the workflow) can check a
user's list before any stage runs; the data stage reads it through the same function."""

from __future__ import annotations

import hashlib
from pathlib import Path

from seenn.common.errors import SeennError

KEY = "data.split_list"
SHA_KEY = "data.split_list_sha256"
HEADER = "class,file,split"
SPLIT_NAMES = ("train", "test")
DATASET = "cifar10dvs"  # the one dataset that reads a split list
DEFAULT_OUTPUT = "data/splits/cifar10dvs_local.txt"  # where `seenn data split-list` writes by default


def configured(data_cfg: dict) -> str | None:
    """The user's split list of a data config, or None (empty or null: the committed list)."""
    return data_cfg.get("split_list") or None


def read_configured(data_cfg: dict) -> tuple[str, dict[str, str]] | None:
    """The user's list of a data config as `read_user_list` gives it, or None when the config uses
    the committed list; SeennError naming the key when the two keys do not fit together or the list
    is missing, differs from its pinned sha256 or is not a split list."""
    path, pinned = configured(data_cfg), data_cfg.get("split_list_sha256")
    if path is None:
        if pinned is not None:
            raise SeennError(f"'{SHA_KEY}' must be null when '{KEY}' is not set (the committed list is pinned "
                             f"in the code)")
        return None
    if data_cfg.get("name", DATASET) != DATASET:
        raise SeennError(f"'{KEY}' is for {DATASET} only, but 'data.name' is {data_cfg['name']!r}: set it to null")
    if pinned is None:
        raise SeennError(f"'{SHA_KEY}' is required when '{KEY}' is set ({path}): `seenn data split-list` "
                         f"prints the sha256 of the list it writes")
    return read_user_list(path, pinned)


def read_user_list(path: str | Path, pinned: str) -> tuple[str, dict[str, str]]:
    """(sha256, {'class/file.aedat4': 'train' | 'test'}) of the user's list `data.split_list`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        raise SeennError(f"'{KEY}': split list {path} not found (relative paths are from the project "
                         f"directory; `seenn data split-list ROOT --output {path}` writes one)") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned:
        raise SeennError(f"'{SHA_KEY}' ({pinned[:12]}...) does not match the sha256 of '{KEY}' {path} "
                         f"({digest}): restore the list or pin its new sha256")
    return digest, parse(data, f"'{KEY}' {path}")


def parse(data: bytes, what: str) -> dict[str, str]:
    """{'class/file.aedat4': split} of a split list's bytes; SeennError naming `what` and the line."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise SeennError(f"{what} is not UTF-8 text") from None
    if not lines or lines[0] != HEADER:
        raise SeennError(f"{what}: the first line must be the header {HEADER!r}, got {(lines or [''])[0][:60]!r}")
    listed: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) != 3 or not fields[0] or not fields[1].endswith(".aedat4") or fields[2] not in SPLIT_NAMES:
            raise SeennError(f"{what} line {number}: expected 'class,<name>.aedat4,train|test', got {line[:80]!r}")
        name = f"{fields[0]}/{fields[1]}"
        if name in listed:
            raise SeennError(f"{what} line {number}: {name} is listed twice")
        listed[name] = fields[2]
    if not listed:
        raise SeennError(f"{what} lists no recordings")
    return listed
