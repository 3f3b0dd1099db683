"""Shifted inputs (data/shift.py, methods/shifted.py): Gaussian pixel noise seeded per sample, the
same whatever the batch size; pixels stay in [0, 1]; event data refused; and every rule read on
shifted logits at its clean-validation thresholds (at no noise: the clean comparison's numbers)."""

import json

import pytest
import torch

from seenn.common.errors import SeennError
from seenn.data.registry import get_spec
from seenn.data.shift import NoisySource
from seenn.data.source import TensorSource, eval_batches
from seenn.methods.shifted import outcomes


def digits(n: int = 12) -> TensorSource:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return TensorSource(get_spec("digits"), x, torch.arange(n) % 10, "test", "test.pt")


def test_the_noise_of_a_sample_depends_on_seed_sigma_and_index_only():
    src = digits()
    a = torch.cat([xb for xb, _ in eval_batches(NoisySource(src, 0.1, seed=3), 5)])
    b = torch.cat([xb for xb, _ in eval_batches(NoisySource(src, 0.1, seed=3), 12)])
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.cat([xb for xb, _ in eval_batches(NoisySource(src, 0.1, seed=4), 12)]))
    assert not torch.equal(a, torch.cat([xb for xb, _ in eval_batches(NoisySource(src, 0.2, seed=3), 12)]))


def test_the_noise_has_its_stated_size_on_the_pixel_scale_and_is_clipped():
    src = digits(40)
    spec = src.spec
    clean = src.eval_inputs(torch.arange(40)) * spec.std[0] + spec.mean[0]
    noisy = NoisySource(src, 0.1, seed=1).eval_inputs(torch.arange(40)) * spec.std[0] + spec.mean[0]
    assert noisy.min() >= -1e-6 and noisy.max() <= 1 + 1e-6
    inside = (clean > 0.3) & (clean < 0.7)  # far from the clip: the noise as drawn
    assert (noisy - clean)[inside].std() == pytest.approx(0.1, rel=0.05)


def test_event_data_and_a_zero_severity_are_refused():
    spec = get_spec("cifar10dvs")
    x = torch.zeros(2, 10, 2, 48, 48, dtype=torch.float16)
    with pytest.raises(SeennError, match="event data: set shift.enabled: false"):
        NoisySource(TensorSource(spec, x, torch.zeros(2, dtype=torch.long), "test", "t.pt"), 0.1, 0)
    with pytest.raises(SeennError, match="shift.noise_std"):
        NoisySource(digits(), 0.0, 0)


def test_the_rules_on_unshifted_logits_give_the_clean_comparison(tmp_path):
    """At noise 0 (the clean test logits) each rule's row equals its tolerance or certified result."""
    from test_rules_comparison import synthetic_logits, write_run

    inputs = write_run(tmp_path)
    _, _, z, y = synthetic_logits()
    metrics = json.loads(open(inputs["metrics_direct"]).read())["test"]
    s1, g = (json.loads(open(inputs[r]).read()) for r in ("seenn1_direct", "guarantee_direct"))
    rows = {r["rule"]: r for r in outcomes(z, y, s1, g)}
    assert rows["Fixed T=4"]["accuracy"] == pytest.approx(metrics["accuracy_per_t"][-1])
    assert rows["SEENN-I (confidence)"]["accuracy"] == pytest.approx(s1["scores"]["confidence"]["test_accuracy"])
    assert rows["SNNCutoff certified (Top-K gap)"]["avg_timesteps"] == pytest.approx(
        g["scores"]["topk_gap"]["ltt"]["test_avg_timesteps"])
    assert rows["SpikeCP (1 - p)"]["coverage"] == pytest.approx(g["conformal"]["test"]["coverage"])
    assert rows["SEENN-I certified (confidence)"]["risk"] == pytest.approx(g["scores"]["confidence"]["ltt"]["test_risk"])
