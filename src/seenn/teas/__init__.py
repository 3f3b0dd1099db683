"""TEAS (layer-wise time steps guided by spiking activity), the research core; its stages live in
seenn.stages.teas and seenn.stages.teas_latency.

temporal (Eq. 3 conversion between windows), layerwise (layer-major execution), mlp (the TEAS
MNIST network), activity (Eq. 2 profile, noise probe), allocation (windows at a scaling ratio,
periodic adjustment), regularizer (Eq. 6-8), cost (operations, energy, timestep-equivalents: the
one counting path), variants (the evaluated variants' names), procedure (profile, allocate,
retrain, evaluate: the steps the stages call)."""
