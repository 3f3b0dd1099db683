"""The research: exit rules (`exits`), metrics, SEENN-I calibration (`seenn1`), the SEENN-II
policy (`policy`), ANN-to-SNN conversion, the early-exit engine, energy counting, latency
timing, and the catalog of methods the engine stages compare (`catalog`)."""
