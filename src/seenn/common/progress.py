"""Progress of a loop: a tqdm bar on a terminal, plain log lines elsewhere.

In a log file (stderr not a terminal, as under Snakemake or DVC) tqdm's carriage-return refreshes
add hundreds of KB per training; there the stages' epoch lines already say how far a run is, so
a loop logs at most one line every `every` seconds (none for a short loop)."""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Iterable, Iterator

from tqdm import tqdm

log = logging.getLogger("seenn")
EVERY_S = 60.0


def is_terminal(stream: IO | None) -> bool:
    """Whether `stream` is an open terminal (False for files, pipes, closed or missing streams)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LogProgress:
    """The non-terminal stand-in for tqdm: the same iteration and set_postfix, one log line per `every` s."""

    def __init__(self, iterable: Iterable, desc: str, total: int | None, every: float):
        self.iterable, self.desc, self.every = iterable, desc, every
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.postfix = ""

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def __iter__(self) -> Iterator:
        last = time.monotonic()
        for done, item in enumerate(self.iterable, 1):
            yield item
            now = time.monotonic()
            if now - last >= self.every:
                last = now
                log.info("%s: %d/%s%s", self.desc, done, self.total if self.total is not None else "?",
                         f" ({self.postfix})" if self.postfix else "")


def progress(iterable: Iterable, desc: str | None = None, *, total: int | None = None, every: float = EVERY_S,
             stream: IO | None = None, **tqdm_kwargs):
    """Iterate `iterable` with progress shown: a transient tqdm bar when `stream` (stderr) is a
    terminal, else a log line every `every` seconds. `desc=None`: no progress at all."""
    stream = sys.stderr if stream is None else stream
    if desc is not None and is_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, file=stream, leave=False, **tqdm_kwargs)
    return _LogProgress(iterable, desc, total, every if desc is not None else float("inf"))
