"""The loops every method shares: training an SNN or ANN epoch by epoch (`fit`), resuming from
per-epoch checkpoints (`resume`), and running an SNN over a split to per-timestep logits (`predict`)."""
