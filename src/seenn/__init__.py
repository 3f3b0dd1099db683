"""seenn-bench: SEENN (temporal early exit for spiking neural networks) as a reproducible pipeline."""

__version__ = "0.1.0"
