"""A shifted test split: Gaussian noise on the pixels, as ImageNet-C's `gaussian_noise` (Hendrycks
and Dietterich 2019): x' = clip(x + N(0, sigma^2), 0, 1) on the [0, 1] pixel scale, then the
dataset's normalization. Seeded per sample (the noise of sample i depends on the seed, sigma and i
only), so every SNN of a run sees the same noisy images, whatever the batch size or worker count;
made on the fly, never stored (a streamed ImageNet split would be stored twice)."""

from __future__ import annotations

import torch

from seenn.common.errors import SeennError
from seenn.data.source import SplitSource, sample_generator


def noise_seed(seed: int, sigma: float) -> int:
    """The seed of one severity's noise: the run's seed and sigma (in millionths), mixed."""
    return (int(seed) * 1_000_003 + round(float(sigma) * 1e6)) % 2**63


class NoisySource(SplitSource):
    """`source` with Gaussian pixel noise of standard deviation `sigma` (on the [0, 1] scale)."""

    def __init__(self, source: SplitSource, sigma: float, seed: int):
        if source.spec.event:
            raise SeennError(f"shift: Gaussian pixel noise is defined for images, and {source.spec.name} is event data: "
                             "set shift.enabled: false")
        if not sigma > 0:
            raise SeennError(f"shift.noise_std: each severity must be above 0, got {sigma}")
        super().__init__(source.spec, source.y, f"{source.split}+noise{sigma:g}", source.path, source.protocol)
        self.source, self.sigma, self.seed = source, float(sigma), noise_seed(seed, sigma)
        self.streamed = source.streamed

    def eval_inputs(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.source.eval_inputs(idx)  # normalized: (p - mean) / std
        mean = torch.tensor(self.spec.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.spec.std, dtype=x.dtype).view(1, -1, 1, 1)
        pixels = x * std + mean
        noise = torch.stack([torch.randn(x.shape[1:], generator=sample_generator(self.seed, int(i)), dtype=x.dtype)
                             for i in idx])
        return ((pixels + self.sigma * noise).clamp(0, 1) - mean) / std

    def subset(self, idx: torch.Tensor) -> "SplitSource":
        raise SeennError("a shifted split is evaluated whole: it has no subsets")
