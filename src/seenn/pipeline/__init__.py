"""The pipeline around the stages: the config and its overlays, the stage table both front doors
read (`table`), GPU slots, and Snakemake's records. Only the CLI imports it."""
