"""One exception type for problems a person can fix (bad config, missing or corrupt files).

The CLI prints these as a single line on stderr, without a traceback."""


class SeennError(Exception):
    """A user-facing error: its message names the key, file or shape at fault and how to fix it."""


def out_of_memory(stage: str, batch_keys: dict[str, object], exc: BaseException) -> SeennError:
    """CUDA ran out of memory in `stage`: one line with the memory asked for and free (from
    torch's message) and the batch-size keys to lower (`batch_keys`: dotted key -> its value)."""
    import re

    text = str(exc)
    asked = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]i?B)", text)
    free = re.search(r"of which ([\d.]+ ?[KMGT]i?B) (?:is )?free", text)
    memory = ", ".join(part for part in (f"asked for {asked.group(1)}" if asked else "",
                                         f"{free.group(1)} free" if free else "") if part) or "see torch's message"
    lower = ", ".join(f"{k} (now {v})" for k, v in batch_keys.items()) or "the batch size of this stage"
    return SeennError(f"stage {stage}: CUDA ran out of memory ({memory}); nothing was written: lower {lower} "
                      f"and rerun")
