import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def default_config() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


TINY_OVERRIDES = {
    "data": {"train_size": 1000, "val_size": 100, "test_size": 200},
    "model": {"stem_channels": 8, "widths": [8, 16], "blocks": [1, 1]},
    "train": {"timesteps": 3, "epochs": 4, "batch_size": 32},
    "evaluate": {"batch_size": 100},
    "seenn1": {"alpha_steps": 20},
    "figures": {"dpi": 50, "confidence_bins": 10},
    "finetune": {"epochs": 1, "batch_size": 32},
    "seenn2": {"epochs": 2, "beta": 1.0, "betas": [1.0, 8.0], "batch_size": 32, "policy_stem_channels": 4,
               "policy_widths": [4, 8, 8]},
}


def tiny_config() -> dict:
    """The default config shrunk so the whole DAG runs in about a minute."""
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY_OVERRIDES.items():
        cfg[section].update(copy.deepcopy(values))
    return cfg
