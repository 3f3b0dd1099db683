"""Atomic, verifiable file output: every declared output is written to a temporary name,
flushed to disk and renamed, so a crash never leaves a file that looks finished."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from seenn.common import distributed
from seenn.common.errors import SeennError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.
    Under torchrun only rank 0 writes files: another rank's write goes to a discarded temporary file.
    A full disk (ENOSPC) stops with one line naming `path`; the temporary file is removed and
    any previous version of `path` kept."""
    if not distributed.is_main():
        with tempfile.TemporaryDirectory(prefix="seenn-rank-") as scratch:
            yield Path(scratch) / Path(path).name
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        kept = "its previous version is kept" if path.exists() else "no earlier version existed"
        raise SeennError(f"no space left on the device while writing {path}: nothing half-written is left "
                         f"and {kept}; free space and rerun") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8, '\\n' line ends) atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline, atomically (stable bytes for DVC)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, naming the file on failure."""
    path = Path(path)
    if not path.exists():
        raise SeennError(f"missing file {path}: run the stage that produces it first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SeennError(f"corrupt JSON file {path} ({exc}): delete it and rerun the stage that wrote it") from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_MAGIC = b"SEENN1\n"


def save_checked(path: str | os.PathLike, obj: Any) -> str:
    """torch.save `obj` atomically behind a header holding the payload's sha256; return the hash.

    The header lets `load_checked` tell a truncated or corrupted file from a valid one before
    torch ever parses it."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    digest = sha256_bytes(payload)
    write_bytes(path, _MAGIC + digest.encode("ascii") + b"\n" + payload)
    return digest


def load_checked(path: str | os.PathLike, *, what: str = "file", producer: str = "the stage that wrote it") -> Any:
    """Load a file written by `save_checked`, verifying its sha256 first.

    Errors name the file and say how to recover (delete it and rerun `producer`)."""
    path = Path(path)
    if not path.exists():
        raise SeennError(f"missing {what} {path}: run {producer} first")
    data = path.read_bytes()
    header_len = len(_MAGIC) + 65
    if len(data) < header_len or not data.startswith(_MAGIC):
        raise SeennError(
            f"corrupt or truncated {what} {path} ({len(data)} bytes, no valid header): "
            f"delete it and rerun {producer}"
        )
    digest = data[len(_MAGIC) : len(_MAGIC) + 64].decode("ascii", "replace")
    payload = data[header_len:]
    if sha256_bytes(payload) != digest:
        raise SeennError(
            f"corrupt or truncated {what} {path} (sha256 mismatch): delete it and rerun {producer}"
        )
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def write_table(df, csv_path, md_path, digits: int = 4, notes: str | None = None) -> None:
    """A pandas DataFrame as CSV and as Markdown (with `notes` as a paragraph under it), each written atomically."""
    write_text(csv_path, df.to_csv(index=False, float_format=f"%.{digits}f"))
    shown = df.astype(object).where(df.notna(), None)  # empty cells, not "nan"
    md = shown.to_markdown(index=False, floatfmt=f".{digits}f", missingval="") + "\n"
    write_text(md_path, md + (f"\n{notes}\n" if notes else ""))
