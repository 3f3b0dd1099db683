"""The methods the engine stages measure (fixed T, SEENN-I per score, SEENN-II, the ANN of the
same architecture), with their labels and the SNN branches' labels, defined once: energy and
latency iterate this one list; tables and report print these labels."""

from __future__ import annotations

from dataclasses import dataclass

from seenn.methods.exits import ExitRule, FixedT, Seenn1

BRANCH_LABELS = {"direct": "Direct-trained SNN", "finetuned": "Fine-tuned SNN", "converted": "QCFS-converted SNN"}
QCFS_ANN = "QCFS ANN"  # the ANN the converted SNN comes from
ANN = "ANN (same architecture)"
SEENN2 = "SEENN-II"
POLICY_ALONE = "SEENN-II policy network alone"  # energy only: what the policy network adds to SEENN-II


def fixed_label(t: int) -> str:
    return f"Fixed T={t}"


def seenn1_label(score: str) -> str:
    return f"SEENN-I ({score})"


@dataclass(frozen=True)
class Method:
    """One measured method: `rule` says where samples exit (None: SEENN-II, whose exits come from
    the policy network at run time; or the ANN, which has no timesteps); `T` the timesteps run."""

    label: str
    kind: str  # fixed | seenn1 | seenn2 | ann
    T: int
    rule: ExitRule | None = None


def engine_methods(T: int, calibration: dict, with_policy: bool) -> list[Method]:
    """Fixed T = 1..T, SEENN-I at each score's calibrated alpha with the settings the calibration
    (`calibration`, a seenn1.json) recorded, SEENN-II when there is a policy, and the ANN."""
    methods = [Method(fixed_label(t), "fixed", t, FixedT()) for t in range(1, T + 1)]
    methods += [Method(seenn1_label(score), "seenn1", T, Seenn1.calibrated(score, calibration))
                for score in calibration["scores"]]
    if with_policy:
        methods.append(Method(SEENN2, "seenn2", T))
    methods.append(Method(ANN, "ann", 1))
    return methods
