"""seenn-bench: SEENN (temporal early exit for spiking neural networks) as a reproducible pipeline.

The package is a house of rooms (subpackages), stacked in layers; data flows up through the
pipeline's stages and imports point down:

    layer 0  common     errors, atomic checked files, result-file formats, progress, seeds and
                        determinism, distributed ranks: importable from every layer
    layer 1  snn        the spiking core: neurons, surrogates, fused kernels, op counting, losses
    layer 2  models     the networks and their registry
             data       the datasets, their registry, the prepared-split format, sources, augmentation
    layer 3  loops      training epochs (`fit`), resuming (`resume`), predicting logits (`predict`)
    layer 4  methods    the research: exit rules, metrics, SEENN-I, the SEENN-II policy, conversion,
                        the early-exit engine, energy, latency
    layer 5  teas       TEAS: layer-wise time steps (it counts operations with methods.energy)
    layer 6  report     tables, figures and the PDF document, built from values
    layer 7  stages     one module per stage family: its declare() and its run function, reading
                        and writing the files between stages
    layer 8  pipeline   the config and overlays, the stage table both front doors read, GPU slots
    layer 9  cli        `seenn ...`; `__main__` above it runs it as `python -m seenn`

The rule: a module imports modules of its own room and of rooms in lower layers only; two rooms
of one layer (models, data) do not import each other, and no research room imports `stages` or
`pipeline`. `tests/test_layers.py` parses every import (function bodies included) and fails on a
cycle or on an import against this rule."""

__version__ = "0.1.0"

# The layers, bottom first: each a tuple of rooms (first-level subpackages or top-level modules).
LAYERS = (
    ("common",),
    ("snn",),
    ("models", "data"),
    ("loops",),
    ("methods",),
    ("teas",),
    ("report",),
    ("stages",),
    ("pipeline",),
    ("cli",),
    ("__main__",),
)
