"""The bottom layer, importable from every other: errors, atomic and sha256-checked files
(`io`), the result-file formats (`artifacts`), progress, seeds and determinism (`runtime`),
distributed ranks, and the config's source record. Torch-free to import as a package."""
