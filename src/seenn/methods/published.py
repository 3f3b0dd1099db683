"""The published exit rules the project runs, each by its own name: which SEENN-I score (or the
conformal rule) is which paper's rule, where the authors' code is, and how this project departs
from it. The labels of every table and figure come from here (methods/catalog.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedRule:
    """One published rule: `name` heads its label, `detail` goes in brackets after it; `also` names
    another paper whose rule is the same one (shown in the label); `paper`, `code` cite it."""

    key: str  # a seenn1.scores entry, or "conformal"
    name: str
    detail: str | None
    paper: str
    code: str
    departure: str
    also: str | None = None


PUBLISHED = {r.key: r for r in (
    PublishedRule("confidence", "SEENN-I", "confidence",
                  "Li, Geller, Kim, Panda, NeurIPS 2023 (SEENN)",
                  "Intelligent-Computing-Lab-Yale/SEENN, test_snn.py, test() (metric 'confidence')",
                  "alpha chosen on validation (the authors' code sweeps it on the test split)"),
    PublishedRule("entropy", "SEENN-I", "entropy",
                  "Li, Moitra, Geller, Panda 2023 (DT-SNN: Input-Aware Dynamic Timestep SNNs)",
                  "Intelligent-Computing-Lab-Yale/SEENN, test_snn.py, test() (metric 'entropy'); DT-SNN names no "
                  "repository of its own",
                  "DT-SNN's 1 - H(softmax(z_t)) / log K with no temperature is this score when "
                  "seenn1.entropy_temperature is false (the default); true divides z_t by seenn1.temperature first, "
                  "which DT-SNN does not. Threshold chosen on validation", also="DT-SNN"),
    PublishedRule("topk_gap", "SNNCutoff", "Top-K gap",
                  "Wu et al. 2023 (Optimising Event-Driven SNN with Regularisation and Cutoff)",
                  "Dengyu-Wu/snncutoff, snncutoff/cutoff/topk_cutoff.py, TopKCutoff",
                  "one threshold on g / (1 + g) for every timestep, chosen on validation; the authors choose one "
                  "beta per timestep on the training set with dropout on"),
    PublishedRule("dynamic_confidence", "Dynamic Confidence", None,
                  "Li, Jones, Furber, ICCV 2023 (Dynamic Confidence)",
                  "chenlicodebank/Dynamic-Confidence-in-Spiking-Neural-Networks, main.py, NeuralNet.forward (mode 2)",
                  "the authors' divisor 30 of the summed outputs kept; their threshold 0.6 is hard-coded, here it is "
                  "chosen on validation"),
    PublishedRule("conformal", "SpikeCP", None,
                  "Chen, Park, Simeone 2023 (Knowing When to Stop)",
                  "AnonymousNeu/SpikeCP, SpikeCP.py",
                  "the nonconformity of the accumulated logits (1 - p or -log p), Bonferroni quantiles over "
                  "conformal.checkpoints; SpikeCP scores spike counts with -log p"),
)}


def rule_label(key: str, rule: str | None = None, detail: str | None = None) -> str:
    """The label of published rule `key` ("SEENN-I (entropy) = DT-SNN", "SNNCutoff (Top-K gap)"),
    at another calibration's threshold beside it when `rule` (certified | tolerance) is given;
    `detail` replaces the rule's bracketed detail (the conformal rule's score)."""
    r = PUBLISHED[key]
    detail = detail if detail is not None else r.detail
    head = r.name if rule is None else f"{r.name} {rule}"
    return head + (f" ({detail})" if detail else "") + (f" = {r.also}" if r.also else "")


def coinciding(settings: dict) -> dict[str, str]:
    """Scores that are the same rule as another score under these SEENN-I settings (a seenn1.json's
    `settings`): dynamic_confidence is the confidence score when the temperature is 30 on summed
    logits. Returns {score: the score it coincides with}, for scores both present."""
    from seenn.methods.exits import DYNAMIC_CONFIDENCE_DIVISOR

    scores = settings["scores"]
    same = {}
    if ("dynamic_confidence" in scores and "confidence" in scores and settings["accumulate"] == "sum"
            and float(settings["temperature"]) == DYNAMIC_CONFIDENCE_DIVISOR):
        same["dynamic_confidence"] = "confidence"
    return same
