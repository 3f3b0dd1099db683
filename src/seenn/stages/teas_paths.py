"""Where TEAS's stages keep their files: results/teas/<target>/ for the SNNs it runs on (direct,
finetuned, converted, and the paper's MNIST MLP), its latency under results/measurements/."""

from __future__ import annotations

from seenn.stages.layout import MEASUREMENTS, RESULTS

TEAS_DIR = f"{RESULTS}/teas"
TARGETS = ("direct", "finetuned", "converted")  # the project's SNNs TEAS allocates windows on
MNIST = "mnist"  # the MLP's own directory (weights, training log, the control trained as long)
# the MNIST row under both readings of the paper's 6.7 average steps: the most active layer keeps T
# (`full`, the rule the paper states) or every window scales to reach the ratio (`scale`)
MNIST_TARGETS = {"mnist_full": "full", "mnist_scale": "scale"}


def is_mnist(target: str) -> bool:
    return target in MNIST_TARGETS


def runs_mlp(target: str) -> bool:
    """The target's network is the MNIST MLP: both MNIST rules, and the control (`MNIST`)."""
    return is_mnist(target) or target == MNIST


def target_dir(target: str) -> str:
    return f"{TEAS_DIR}/{target}"


def allocation(target: str) -> str:
    """Activity profile, noise probe, per-step costs and the initial allocation at every ratio."""
    return f"{target_dir(target)}/allocation.json"


def evaluation(target: str) -> str:
    """Accuracy and cost of every variant (fixed T, allocation only, retrained) on the test split."""
    return f"{target_dir(target)}/evaluation.json"


def retrained(target: str, regularized: bool = True) -> str:
    """The retrained weights and final windows at every ratio (without the regularizer: the ablation)."""
    return f"{target_dir(target)}/retrained{'' if regularized else '_noreg'}.pt"


def retrain_log(target: str, regularized: bool = True) -> str:
    return f"{target_dir(target)}/retrain{'' if regularized else '_noreg'}_log.csv"


MNIST_MODEL = f"{TEAS_DIR}/{MNIST}/snn.pt"
MNIST_TRAIN_LOG = f"{TEAS_DIR}/{MNIST}/train_log.csv"
MNIST_CONTROL = f"{TEAS_DIR}/{MNIST}/retrained_fixed.pt"  # fixed T, trained for the retraining's extra epochs
MNIST_CONTROL_LOG = f"{TEAS_DIR}/{MNIST}/retrain_fixed_log.csv"
LATENCY = f"{MEASUREMENTS}/teas_latency.json"
LATENCY_CSV = f"{MEASUREMENTS}/teas_latency.csv"
LATENCY_MD = f"{MEASUREMENTS}/teas_latency.md"


def targets(conversion: bool, mnist: bool, direct: bool = True) -> list[str]:
    """The SNNs TEAS runs on: the direct and fine-tuned ones (unless `direct` is false: teas.only), the
    converted one with the conversion branch, the MNIST row's MLP on the digits."""
    return ([t for t in TARGETS if (direct or t == "converted") and (conversion or t != "converted")]
            + (list(MNIST_TARGETS) if mnist else []))


def evaluations(conversion: bool, mnist: bool, direct: bool = True) -> dict[str, str]:
    """The evaluation files the tables, figures and report read, by role."""
    names = targets(conversion, mnist, direct)
    out = {f"teas_evaluation_{t}": evaluation(t) for t in names}
    out.update({f"teas_allocation_{t}": allocation(t) for t in names})
    return out
