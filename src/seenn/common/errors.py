"""One exception type for problems a person can fix (bad config, missing or corrupt files).

The CLI prints these as a single line on stderr, without a traceback."""


class SeennError(Exception):
    """A user-facing error: its message names the key, file or shape at fault and how to fix it."""
