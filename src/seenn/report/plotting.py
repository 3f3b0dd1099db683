"""matplotlib's pyplot on the Agg backend, loaded where a figure is drawn: every stage and every
Snakemake or DVC start imports the figure modules through the stage table, and pyplot takes half a
second to import."""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
