"""GPU slots for jobs side by side on one machine: Snakemake's local executor counts a `gpu`
resource but never says which GPU a job got (snakemake issue 281), so `seenn run` picks its
own. `SEENN_GPU_SLOTS` lists the GPU ids to share (e.g. "0,1,2,3"); a job needing n GPUs takes
the first n free ones, each held by an exclusive lock on one file per id in a directory shared by
every run on the machine (`SEENN_GPU_LOCK_DIR`, default <tmp>/seenn-gpu-slots-<user>), so several
project directories (paper rows side by side) share the GPUs too. The locks are held for the
life of the process and of what it execs (torchrun), released by the kernel when it ends, even
on SIGKILL. `CUDA_VISIBLE_DEVICES` is set to the ids taken, before torch starts CUDA."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from pathlib import Path

from seenn.common.errors import SeennError

SLOTS_ENV = "SEENN_GPU_SLOTS"
LOCK_DIR_ENV = "SEENN_GPU_LOCK_DIR"
log = logging.getLogger("seenn")
_HELD: list[int] = []  # open lock file descriptors of this process


# what CUDA_VISIBLE_DEVICES takes: a GPU index, or a GPU or MIG UUID (MIG-<uuid>, MIG-GPU-<uuid>/gi/ci)
SLOT_PATTERN = re.compile(r"\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+")


def configured_slots() -> list[str]:
    """The GPU ids of `SEENN_GPU_SLOTS` (empty: no allocation, CUDA_VISIBLE_DEVICES as it is),
    each a GPU index or a GPU / MIG UUID: a name CUDA does not know would hide every GPU, and a
    stage with `device: auto` would then train on the CPU without a word."""
    raw = os.environ.get(SLOTS_ENV, "").strip()
    slots = [s.strip() for s in raw.split(",") if s.strip()]
    bad = [s for s in slots if not SLOT_PATTERN.fullmatch(s)]
    if bad:
        raise SeennError(f"{SLOTS_ENV}={raw!r}: {', '.join(repr(b) for b in bad)} is not a GPU index or a GPU/MIG UUID "
                         f"(what CUDA_VISIBLE_DEVICES takes, e.g. 0,1 or GPU-<uuid>)")
    if len(set(slots)) != len(slots):
        raise SeennError(f"{SLOTS_ENV}={raw!r} names a GPU twice")
    return slots


def machine_gpus() -> set[str] | None:
    """The GPUs of this machine as CUDA_VISIBLE_DEVICES names them (indices and UUIDs), from
    `nvidia-smi`; None where it cannot tell (no nvidia-smi: the check is skipped)."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {part.strip() for line in out.splitlines() for part in line.split(",") if part.strip()}


def check_present(slots: list[str], present: set[str] | None) -> None:
    """Refuse GPU ids this machine lacks (MIG UUIDs are not listed by index: left to CUDA)."""
    if present is None:
        return
    missing = [s for s in slots if not s.startswith("MIG-") and s not in present]
    if missing:
        indices = sorted((p for p in present if p.isdigit()), key=int)
        raise SeennError(f"{SLOTS_ENV} names {', '.join(missing)}, which this machine lacks (its GPUs: "
                         f"{', '.join(indices) or 'none'})")


def lock_dir() -> Path:
    import getpass
    import tempfile

    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"seenn-gpu-slots-{getpass.getuser()}")


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.set_inheritable(fd, True)  # kept across exec (torchrun) and by its children
    return fd


def acquire(n: int, slots: list[str] | None = None, timeout_s: float | None = None, poll_s: float = 0.2) -> list[str]:
    """Take `n` free GPU slots (waiting while others hold them), set CUDA_VISIBLE_DEVICES to their
    ids and return them. No slots configured: nothing to do, returns []."""
    slots = configured_slots() if slots is None else slots
    if not slots:
        return []
    if n > len(slots):
        raise SeennError(f"a job needs {n} GPUs but {SLOTS_ENV} lists {len(slots)} ({','.join(slots)})")
    check_present(slots, machine_gpus())
    directory = lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waited = False
    while True:
        taken: list[tuple[str, int]] = []
        for slot in slots:
            fd = _try_lock(directory / f"gpu-{slot}.lock")
            if fd is not None:
                taken.append((slot, fd))
                if len(taken) == n:
                    break
        if len(taken) == n:
            _HELD.extend(fd for _, fd in taken)
            ids = [slot for slot, _ in taken]
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
            log.info("GPU slot%s %s (CUDA_VISIBLE_DEVICES=%s)", "s" if n > 1 else "", ",".join(ids), ",".join(ids))
            return ids
        for _, fd in taken:  # all or nothing: two jobs each holding half never deadlock
            os.close(fd)
        if deadline is not None and time.monotonic() > deadline:
            raise SeennError(f"no {n} free GPU slot(s) among {SLOTS_ENV}={','.join(slots)} after {timeout_s:.0f} s")
        if not waited:
            log.info("waiting for %d free GPU slot(s) among %s", n, ",".join(slots))
            waited = True
        time.sleep(poll_s)


def release() -> None:
    """Give back every slot this process holds (normally the process's end does it)."""
    while _HELD:
        os.close(_HELD.pop())
