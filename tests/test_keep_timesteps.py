"""conversion.keep_timesteps: the converted SNN's evaluation keeps the cumulative logits of chosen
timesteps only (every one by default); what reads every timestep (SEENN-I, SEENN-II, AET, the
guarantee and shifted-input rules) refuses a sparse file and the config refuses the combination,
each in one line naming the key."""

import copy

import pytest
import torch
from conftest import ROOT

from seenn.common.artifacts import load_logits, save_logits
from seenn.common.errors import SeennError
from seenn.common.io import load_checked
from seenn.data.registry import get_spec
from seenn.data.source import TensorSource
from seenn.loops.predict import predict_logits
from seenn.methods.metrics import kept_timesteps
from seenn.models import build_snn
from seenn.pipeline.config import load_config, validate_config
from seenn.stages.evaluate import summarize

MODEL = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1], "sew_connect": "add"}
NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
KEY = "conversion.keep_timesteps"


def test_the_grid_keeps_its_entries_up_to_t_and_t_itself():
    assert kept_timesteps(None, 8) is None
    assert kept_timesteps("pow2", 12) == [1, 2, 4, 8, 12]
    assert kept_timesteps([3, 100, 1], 8) == [1, 3, 8]
    assert kept_timesteps([1, 2, 3, 4], 4) is None  # every timestep: the default's file
    assert kept_timesteps("pow2", 2) is None


@pytest.mark.parametrize("stepwise", [False, True])
def test_kept_logits_are_the_full_logits_at_those_timesteps(stepwise):
    torch.manual_seed(0)
    spec = get_spec("digits")
    model = build_snn(MODEL, NEURON, 1, 10)
    g = torch.Generator().manual_seed(1)
    src = TensorSource(spec, torch.randint(0, 256, (7, 1, 28, 28), generator=g, dtype=torch.uint8), torch.arange(7) % 10,
                       "test", "fixture")
    full = predict_logits(model, src, 6, 3, torch.device("cpu"), stepwise=stepwise)
    kept = predict_logits(model, src, 6, 3, torch.device("cpu"), stepwise=stepwise, keep=[1, 4, 6])
    assert full.shape == (7, 6, 10) and kept.shape == (7, 3, 10)
    torch.testing.assert_close(kept, full[:, [0, 3, 5]], rtol=1e-5, atol=1e-5)
    s = summarize(kept, src.y, [1, 4, 6], 6)
    every = summarize(full, src.y)
    assert s["kept_timesteps"] == [1, 4, 6] and s["timesteps"] == 6 and "aet" not in s
    assert s["accuracy_per_kept_t"] == [every["accuracy_per_t"][t - 1] for t in (1, 4, 6)]


def test_a_sparse_logits_file_is_refused_by_whatever_reads_every_timestep(tmp_path):
    z, y = torch.randn(4, 2, 3), torch.arange(4) % 3
    save_logits(tmp_path / "every.pt", torch.randn(4, 5, 3), y)
    assert set(load_checked(tmp_path / "every.pt", what="logits", producer="t")) == {"logits", "labels"}  # as before
    save_logits(tmp_path / "kept.pt", z, y, kept=[2, 5], timesteps=5)
    with pytest.raises(SeennError, match=rf"2 of 5 timesteps \('{KEY}'\).*set {KEY} empty") as exc:
        load_logits(tmp_path / "kept.pt")
    assert "\n" not in str(exc.value)
    assert torch.equal(load_logits(tmp_path / "kept.pt", every=False)[0], z)
    from seenn.stages.declaration import StageContext
    from seenn.stages.seenn1 import stage_seenn1

    ctx = StageContext("seenn1_converted", {}, {"logits_val": str(tmp_path / "kept.pt"), "logits_test": str(tmp_path / "kept.pt")},
                       {}, torch.device("cpu"), tmp_path)
    with pytest.raises(SeennError, match=KEY):  # SEENN-I's stage, before any sweep
        stage_seenn1(ctx)


def test_the_config_refuses_a_sparse_grid_where_exit_rules_read_it():
    cfg = load_config(ROOT / "params.yaml")
    sparse = copy.deepcopy(cfg)
    sparse["conversion"]["keep_timesteps"] = "pow2"
    with pytest.raises(SeennError, match=rf"'{KEY}' keeps 7 of the converted SNN's 64 timesteps.*teas.only: true") as exc:
        validate_config(sparse)
    assert "\n" not in str(exc.value)
    sparse["teas"]["only"] = True  # no exit rule: the TEAS rows
    validate_config(sparse)
    every = copy.deepcopy(cfg)
    every["conversion"].update(keep_timesteps=list(range(1, 65)))
    validate_config(every)  # every timestep, listed
    off = copy.deepcopy(cfg)
    off["conversion"].update(keep_timesteps=[64], enabled=False)
    validate_config(off)  # no converted SNN
