"""Each vocabulary of the config (dataset, architecture, surrogate, loss, exit score, estimator,
augmentation, ...) has one Python registry; the schema's enum must name exactly its entries, so
that a name added on one side only fails here, not at run time."""

import pytest

from seenn.common import runtime
from seenn.data import augment_modes
from seenn.data.registry import registry as datasets
from seenn.methods import exits
from seenn.methods.policy import estimators as policy
from seenn.models import ARCHITECTURES
from seenn.models.sew import CONNECTS
from seenn.pipeline.config import load_schema
from seenn.snn import losses, neurons


def enum(path: str) -> set:
    """The enum of a schema entry, e.g. 'train.loss' or 'seenn1.scores' (array items)."""
    node = load_schema()
    for part in path.split("."):
        node = node["properties"][part]
    return set(node.get("enum") or node["items"]["enum"])


TIED = {
    "data.name": lambda: datasets(),
    "model.arch": lambda: ARCHITECTURES,
    "model.sew_connect": lambda: CONNECTS,
    "neuron.surrogate": lambda: neurons.SURROGATES,
    "train.loss": lambda: losses.LOSSES,
    "finetune.loss": lambda: losses.FINETUNE_LOSSES,
    "seenn1.scores": lambda: exits.SCORES,
    "seenn1.accumulate": lambda: exits.ACCUMULATE,
    "seenn2.estimator": lambda: policy.ESTIMATORS,
    "conversion.seenn2_variant": lambda: ("validation", *policy.VARIANTS),
    "train.augment": lambda: augment_modes.AUGMENTATIONS,
    "finetune.augment": lambda: augment_modes.AUGMENTATIONS,
    "conversion.augment": lambda: augment_modes.AUGMENTATIONS,
    "cpu_kernels": lambda: runtime.CPU_KERNEL_ENV,
    "device": lambda: runtime.DEVICES,
    "amp": lambda: runtime.AMP_DTYPES,
}


@pytest.mark.parametrize("path", sorted(TIED))
def test_schema_enum_names_exactly_the_registry(path):
    assert enum(path) == set(TIED[path]())


def test_event_datasets_are_the_registered_event_datasets():
    assert set(augment_modes.EVENT_DATASETS) == {name for name, spec in datasets().items() if spec.event}
