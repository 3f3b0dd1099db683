"""The methods the engine stages measure (fixed T, SEENN-I per score, SEENN-II, the ANN of the
same architecture), with their labels and the SNN branches' labels, defined once: energy and
latency iterate this one list; tables and report print these labels."""

from __future__ import annotations

from dataclasses import dataclass, replace

from seenn.methods.exits import ExitRule, FixedT, Seenn1
from seenn.methods.published import rule_label

BRANCH_LABELS = {"direct": "Direct-trained SNN", "finetuned": "Fine-tuned SNN", "converted": "QCFS-converted SNN"}
QCFS_ANN = "QCFS ANN"  # the ANN the converted SNN comes from
RMP_ANN = "ReLU ANN (RMP)"  # ... under conversion.method rmp


def ann_label(ann_metrics: dict) -> str:
    """The converted SNN's ANN as tables name it, from its ann_metrics.json (QCFS: with its levels L)."""
    return RMP_ANN if ann_metrics.get("method") == "rmp" else f"{QCFS_ANN} (L={ann_metrics['levels']})"


CONVERTED_LABELS = {"qcfs": BRANCH_LABELS["converted"], "rmp": "RMP-converted SNN"}  # by conversion.method


def converted_label(method: str | None) -> str:
    """The converted SNN as tables name it, by the conversion that made it (None: QCFS, the default)."""
    return CONVERTED_LABELS[method or "qcfs"]

ANN = "ANN (same architecture)"
SEENN2 = "SEENN-II"
POLICY_ALONE = "SEENN-II policy network alone"  # energy only: what the policy network adds to SEENN-II


def fixed_label(t: int) -> str:
    return f"Fixed T={t}"


def multistep_label(t: int) -> str:
    """Fixed T timed as the multi-step forward model(x, t), beside the engine's `fixed_label`."""
    return f"Fixed T={t} (multi-step)"


def seenn1_label(score: str, rule: str | None = None) -> str:
    """The exit rule of SEENN-I score `score` by its published name ("SEENN-I (confidence)",
    "SNNCutoff (Top-K gap)", methods/published.py) at the alpha `seenn1.calibration` picks, or
    at another rule's alpha beside it (`rule`: tolerance | certified)."""
    return rule_label(score, rule)


CONFORMAL_SCORES = {"one_minus_p": "1 - p", "neg_log_p": "-log p"}  # conformal.score -> the label's words


def conformal_label(score: str) -> str:
    """The conformal stopping rule, SpikeCP's, with its nonconformity score ("SpikeCP (1 - p)")."""
    return rule_label("conformal", detail=CONFORMAL_SCORES[score])


CALIBRATIONS = {"tolerance": "tolerance", "ltt": "certified"}  # seenn1.calibration -> the label of its rule beside


@dataclass(frozen=True)
class Method:
    """One measured method: `rule` says where samples exit (None: SEENN-II, whose exits come from
    the policy network at run time; or the ANN, which has no timesteps); `T` the timesteps run."""

    label: str
    kind: str  # fixed | rule (an exit rule on the accumulated logits) | seenn2 | ann
    T: int
    rule: ExitRule | None = None
    calibration: str | None = None  # a rule's: how its threshold was chosen (tolerance | ltt | conformal)
    score: str | None = None  # ... and the score it thresholds


def engine_methods(T: int, calibration: dict, with_policy: bool, guarantee: dict | None = None,
                   choose: str = "tolerance") -> list[Method]:
    """Fixed T = 1..T; SEENN-I per score at the alpha `choose` picks (seenn1.calibration:
    tolerance, from `calibration`, a seenn1.json; or ltt, from `guarantee`, a guarantee.json:
    full T where no alpha is certified), with the settings the calibration recorded; when a
    guarantee.json is given and not void, the other rule's SEENN-I and the conformal rule beside
    it; SEENN-II when there is a policy; the ANN."""
    if choose not in CALIBRATIONS:
        raise ValueError(f"seenn1.calibration must be one of {sorted(CALIBRATIONS)}, got {choose!r}")
    usable = guarantee is not None and "void" not in guarantee
    if choose == "ltt" and not usable:
        raise ValueError("seenn1.calibration is 'ltt' but there is no Learn-then-Test result to read"
                         + (f": {guarantee['void']}" if guarantee else ""))
    rules = {"tolerance": lambda score: Seenn1.calibrated(score, calibration)}
    if usable:
        rules["ltt"] = lambda score: ltt_rule(score, calibration, guarantee)
    methods = [Method(fixed_label(t), "fixed", t, FixedT()) for t in range(1, T + 1)]
    scores = calibration["settings"]["scores"]  # the config's order (the JSON's keys are sorted)
    methods += [Method(seenn1_label(score), "rule", T, rules[choose](score), choose, score) for score in scores]
    for other in (c for c in rules if c != choose):
        methods += [Method(seenn1_label(score, CALIBRATIONS[other]), "rule", T, rules[other](score), other, score)
                    for score in scores]
    if usable:
        score = guarantee["conformal"]["score"]
        methods.append(Method(conformal_label(score), "rule", T, conformal_rule(guarantee), "conformal", score))
    if with_policy:
        methods.append(Method(SEENN2, "seenn2", T))
    methods.append(Method(ANN, "ann", 1))
    return methods


def ltt_rule(score: str, calibration: dict, guarantee: dict) -> ExitRule:
    """SEENN-I at Learn-then-Test's certified alpha for `score`; no early exit (full T) when no
    alpha was certified (the guarantee then holds trivially: risk 0), never another rule."""
    ltt = guarantee["scores"][score]["ltt"]
    if not ltt["certified"]:
        return FixedT()
    return replace(Seenn1.calibrated(score, calibration), alpha=ltt["alpha"])


def conformal_rule(guarantee: dict) -> ExitRule:
    """The conformal stopping rule with the thresholds a guarantee.json recorded."""
    from seenn.methods.conformal import ConformalExit

    c = guarantee["conformal"]
    return ConformalExit(tuple(c["checkpoints"]), tuple(c["q"]), c["max_set_size"], c["score"])
