"""Published exit rules as SEENN-I scores (methods/exits.py), each checked against a transcription
of its authors' code on hand-made accumulated-logit traces: the exits must be the same.

- DT-SNN (Li, Moitra, Geller, Panda 2023): Intelligent-Computing-Lab-Yale/SEENN, test_snn.py,
  `test`, metric 'entropy': 1 - H(softmax(sum of outputs)) / log K > threshold, no temperature.
- SNNCutoff Top-K (Wu et al. 2023): Dengyu-Wu/snncutoff, snncutoff/cutoff/topk_cutoff.py,
  `TopKCutoff.cutoff_evaluation`: gap between the two largest summed outputs > beta, else T.
- Dynamic Confidence (Li, Jones, Furber 2023): chenlicodebank/Dynamic-Confidence-in-Spiking-Neural-
  Networks, main.py, `NeuralNet.forward` (mode 2): max softmax(summed outputs / 30) > 0.6.
- SpikeCP (Chen, Park, Simeone 2023): AnonymousNeu/SpikeCP, SpikeCP.py: nonconformity -log softmax of
  the spike counts, per checkpoint the ceil((1 - alpha / |S|)(n + 1))-th smallest calibration score
  (the list closed by +inf), stop at the first checkpoint whose set holds at most I_th classes."""

import math

import pytest
import torch

from seenn.methods.exits import Seenn1, exit_scores


def traces(n: int = 64, T: int = 6, K: int = 5, seed: int = 0) -> torch.Tensor:
    """Accumulated logits [n, T, K] of per-step outputs that drift towards one class."""
    g = torch.Generator().manual_seed(seed)
    out = torch.randn(n, T, K, generator=g, dtype=torch.float64) * 2
    out[torch.arange(n), :, torch.arange(n) % K] += torch.rand(n, 1, generator=g, dtype=torch.float64) * 3
    return out.cumsum(1)


def dtsnn_exits(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """test_snn.py's loop, metric 'entropy', one sample at a time."""
    n, T, K = z.shape
    exits = []
    for b in range(n):
        for s in range(T):
            probs = torch.log_softmax(z[b : b + 1, s], dim=1)
            entropy = -torch.sum(probs * torch.exp(probs), dim=1) / math.log(K)
            if (1 - entropy)[0] > threshold or s == T - 1:
                exits.append(s + 1)
                break
    return torch.tensor(exits)


def topk_exits(z: torch.Tensor, beta: float) -> torch.Tensor:
    """TopKCutoff.cutoff_evaluation with one beta for every timestep: [T, N] gaps, index[-1] = 1, argmax."""
    output_t = z.transpose(0, 1)  # [T, N, K]: the running sums
    topk = torch.topk(output_t, 2, dim=-1)
    topk_gap_t = topk[0][..., 0] - topk[0][..., 1]
    index = (topk_gap_t > beta).float()
    index[-1] = 1.0
    return torch.argmax(index, dim=0) + 1


def dynamic_confidence_exits(z: torch.Tensor, criterion: float = 0.6) -> torch.Tensor:
    """main.py's mode 2: output_of_the_last_layer += output / 30; stop once max softmax > 0.6."""
    n, T, _ = z.shape
    exits = []
    for b in range(n):
        acc = None
        for step in range(T):
            out = z[b, step] - (z[b, step - 1] if step else 0)  # this step's output
            acc = out / 30 if step == 0 else acc + out / 30
            confidence = torch.softmax(acc, dim=0).max()
            if confidence > criterion or step == T - 1:
                exits.append(step + 1)
                break
    return torch.tensor(exits)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_dtsnn_is_the_entropy_score(threshold):
    z = traces()
    assert torch.equal(Seenn1("entropy", threshold).posthoc(z), dtsnn_exits(z, threshold))


@pytest.mark.parametrize("beta", [0.5, 2.0, 6.0])
def test_snncutoff_topk_is_the_topk_gap_score(beta):
    z = traces(seed=1)
    ours = Seenn1("topk_gap", beta / (1 + beta)).posthoc(z)  # g > beta  <=>  g / (1 + g) > beta / (1 + beta)
    assert torch.equal(ours, topk_exits(z, beta))
    assert 1 < ours.double().mean() < z.shape[1]  # the traces make samples leave at several timesteps


@pytest.mark.parametrize("criterion", [0.3, 0.6])
def test_dynamic_confidence_is_the_dynamic_confidence_score(criterion):
    z = traces(seed=2) * 10  # the authors' divisor of 30 needs large summed outputs to reach 0.6
    ours = Seenn1("dynamic_confidence", criterion).posthoc(z)
    assert torch.equal(ours, dynamic_confidence_exits(z, criterion))
    assert 1 < ours.double().mean() < z.shape[1]


def test_dynamic_confidence_is_not_seenn1_confidence_at_another_alpha():
    """Dividing summed outputs by a fixed 30 is not a monotone map of max softmax(z_t) (it acts on
    the logits before the softmax): no single SEENN-I alpha gives the same exits on these traces."""
    z = traces(seed=3) * 10
    target = Seenn1("dynamic_confidence", 0.6).posthoc(z)
    conf = exit_scores(z, "confidence")
    candidates = torch.unique(conf)
    assert not any(torch.equal(Seenn1("confidence", float(a)).posthoc(z), target) for a in candidates)


def spikecp_exits(z_cal, y_cal, z, alpha: float, checkpoints: list[int], i_th: int) -> torch.Tensor:
    """SpikeCP.py's calibration and stopping, one sample and one class at a time."""
    n, K = len(y_cal), z.shape[-1]
    qs = []
    for t in checkpoints:
        scores = sorted([float(-torch.log_softmax(z_cal[i, t - 1], 0)[y_cal[i]]) for i in range(n)] + [math.inf])
        qs.append(scores[math.ceil((1 - alpha / len(checkpoints)) * (n + 1)) - 1])
    exits = []
    for x in z:
        for t, q in zip(checkpoints, qs):
            size = sum(float(-torch.log_softmax(x[t - 1], 0)[c]) <= q for c in range(K))
            if size <= i_th or t == checkpoints[-1]:
                exits.append(t)
                break
    return torch.tensor(exits)


@pytest.mark.parametrize("alpha, i_th", [(0.1, 1), (0.2, 2)])
def test_spikecp_is_the_conformal_rule_with_neg_log_p(alpha, i_th):
    from seenn.methods.conformal import ConformalExit, calibrate

    z = traces(n=160, T=8, seed=4)
    y = z[:, -1].argmax(-1)
    y[::7] = (y[::7] + 1) % z.shape[-1]  # some labels the SNN gets wrong
    checkpoints = [2, 4, 6, 8]  # SpikeCP's {20, 40, 60, 80} of T = 80, scaled
    q = calibrate(z[:100], y[:100], checkpoints, alpha, "neg_log_p")
    ours = ConformalExit(tuple(checkpoints), tuple(q), i_th, "neg_log_p").posthoc(z[100:])
    assert torch.equal(ours, spikecp_exits(z[:100], y[:100], z[100:], alpha, checkpoints, i_th))
    assert len(set(ours.tolist())) > 1


def test_every_score_lies_in_the_unit_interval_and_the_engine_runs_it():
    from test_engine import T, posthoc_logits, tiny

    from seenn.methods import engine

    z = traces()
    for score in ("topk_gap", "dynamic_confidence"):
        s = exit_scores(z, score)
        assert s.min() >= 0 and s.max() <= 1
    model = tiny()
    torch.manual_seed(4)
    x = torch.randn(13, 1, 12, 12) * 2
    zl = posthoc_logits(model, x, T)
    for rule in (Seenn1("topk_gap", 0.5), Seenn1("dynamic_confidence", 0.2)):
        res = engine.run(model, x, T, rule, batch_size=5)
        assert torch.equal(res.exit_t, rule.posthoc(zl)), rule


def test_the_calibration_picks_a_threshold_for_every_published_rule():
    """The same tolerance calibration as SEENN-I's, on validation, for every score; the topk_gap
    sweep reaches gaps far beyond one logit (alpha near 1 is a gap near 1 / (1 - alpha))."""
    from seenn.methods.exits import SCORES
    from seenn.methods.seenn1 import calibrate

    z = traces(n=400, seed=5) * 3
    y = z[:, -1].argmax(-1)
    cfg = {"scores": list(SCORES), "alpha_min": 0.1, "alpha_max": 0.999999, "alpha_steps": 80, "temperature": 1.0,
           "accumulate": "sum", "entropy_temperature": False, "tolerance_points": 5.0}
    table, result = calibrate(z[:200], y[:200], z[200:], y[200:], cfg)
    assert set(table["score"]) == set(SCORES)
    for score, r in result["scores"].items():
        assert 0.1 <= r["alpha"] <= 0.999999 and r["val_accuracy"] >= 100 - 5.0 - 1e-9, score
        assert 1 <= r["test_avg_timesteps"] < z.shape[1], score
