"""The spiking core: neurons and surrogate gradients (`neurons`), the fused LIF kernels
(`kernels`), operation counting on real networks (`ops`) and the per-timestep losses (`losses`)."""
