"""TEAS's stages on tiny inputs: allocate -> retrain (with and without the regularizer) -> evaluate
on a tiny spiking ResNet, the MNIST MLP's train -> allocate -> retrain -> evaluate, and the tables
and figures built from their files; every output byte-identical on a rerun."""

import copy
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from seenn.common.artifacts import save_snn
from seenn.common.errors import SeennError
from seenn.data.files import save_split
from seenn.data.registry import get_spec
from seenn.models import arch_config, build_snn
from seenn.pipeline.config import load_config
from seenn.stages import teas as teas_stage
from seenn.stages.declaration import StageContext
from seenn.teas.variants import ALLOCATION, CONTROL, FIXED, NOREG, RETRAINED

MODEL = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1], "sew_connect": "add"}
NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}


def _teas_params(**changes) -> dict:
    t = copy.deepcopy(load_config(ROOT / "params.yaml")["teas"])
    t.update({"ratios": [0.6, 0.8], "ratio": 0.6, "profile_samples": 40, "noise_samples": 30, "eval_samples": 0,
              "batch_size": 20, "retrain_samples": 40, "epochs": 2, "finetune_epochs": 1, "retrain_batch_size": 20,
              "latency_samples": 10, "latency_repetitions": 1})
    t["mnist"].update({"timesteps": 4, "hidden": 16, "epochs": 1, "retrain_epochs": 1, "finetune_epochs": 1, "ratio": 0.5})
    t.update(changes)
    return t


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """Tiny digits splits and a tiny direct SNN (untrained weights: the stages only need spikes)."""
    d = tmp_path_factory.mktemp("teas")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 60), ("val", 50), ("test", 40)):
        x = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
        y = torch.arange(n) % 10
        save_split(d / f"{split}.pt", "digits", split, x, y)
    torch.manual_seed(0)
    spec = get_spec("digits")
    model = build_snn(MODEL, NEURON, 1, 10)
    with torch.no_grad():  # enough input current that every layer fires
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(3.0)
    save_snn(d / "snn.pt", model, model_cfg=arch_config(MODEL), neuron_cfg=NEURON, timesteps=3, spec=spec)
    return d


def _ctx(d: Path, name: str, inputs: dict, outputs: dict, extras: dict, teas: dict | None = None) -> StageContext:
    params = {"seed": 3, "device": "cpu", "deterministic": True, "loader": {"workers": 0, "pin_memory": False},
              "engine": {"threads": 1}, "train": {"tf32": False}, "teas": teas or _teas_params()}
    return StageContext(name=name, params=params, inputs={k: str(d / v) for k, v in inputs.items()},
                        outputs={k: str(d / v) for k, v in outputs.items()}, device=torch.device("cpu"),
                        checkpoint_dir=d / "ck", extras=extras)


def _direct_chain(d: Path, out: str, teas: dict | None = None) -> dict[str, Path]:
    ex = {"target": "direct"}
    teas_stage.stage_allocate(_ctx(d, "a", {"model": "snn.pt", "val": "val.pt"}, {"allocation": f"{out}/allocation.json"}, ex, teas))
    for reg, tag in ((True, ""), (False, "_noreg")):
        teas_stage.stage_retrain(_ctx(d, "r", {"model": "snn.pt", "train": "train.pt", "allocation": f"{out}/allocation.json"},
                                      {"model": f"{out}/retrained{tag}.pt", "log": f"{out}/retrain{tag}_log.csv"},
                                      {**ex, "regularized": reg}, teas))
    teas_stage.stage_evaluate(_ctx(d, "e", {"model": "snn.pt", "test": "test.pt", "allocation": f"{out}/allocation.json",
                                            "retrained": f"{out}/retrained.pt", "retrained_noreg": f"{out}/retrained_noreg.pt"},
                                   {"evaluation": f"{out}/evaluation.json"}, ex, teas))
    return {p.name: p for p in sorted((d / out).iterdir())}


def _hand_activity(d: Path, samples: int, T: int) -> list[float]:
    """Eq. 2 as printed, counted here: each spiking layer's spikes per inference per step on the first
    `samples` validation inputs at the full window (a layer-major run at T is the network's forward)."""
    from seenn.data.files import open_split
    from seenn.data.spec import to_input
    from seenn.loops.predict import load_snn
    from seenn.teas import layerwise

    src = open_split(d / "val.pt")
    model, _ = load_snn(d / "snn.pt", src.spec)
    with torch.no_grad():
        res = layerwise.run(model.eval(), to_input(src.spec, src.x[:samples]), [T] * 5)
    return [float((s != 0).sum()) / (samples * T) for s in res.spikes.values()]


def test_direct_chain_runs_and_is_byte_identical_on_rerun(project):
    from seenn.common.io import read_json
    from seenn.teas.allocation import allocate_to_ratio, scaling_ratio, start_ratio

    a = _direct_chain(project, "run_a")
    b = _direct_chain(project, "run_b")
    assert sorted(a) == sorted(b) == ["allocation.json", "evaluation.json", "retrain_log.csv", "retrain_noreg_log.csv",
                                      "retrained.pt", "retrained_noreg.pt"]
    assert [n for n in a if a[n].read_bytes() != b[n].read_bytes()] == []
    alloc = read_json(a["allocation.json"])
    assert [x["ratio"] for x in alloc["allocations"]] == [0.6, 0.8]
    # the activity is Eq. 2 as printed (teas.activity: layer), counted by hand
    assert alloc["activity"] == "layer"
    assert [r["raw"] for r in alloc["layers"]] == pytest.approx(_hand_activity(project, 40, 3))
    act = [r["raw"] for r in alloc["layers"]]
    costs = [r["cost_per_step"] for r in alloc["layers"]]
    top = max(range(5), key=lambda i: (act[i], -i))
    for x in alloc["allocations"]:
        w = x["windows"]
        assert w[top] == 3 and min(w) >= 1  # the most active layer keeps T
        assert all(w[i] >= w[j] for i in range(5) for j in range(5) if act[i] > act[j])  # more active: never fewer steps
        assert x["achieved_ratio"] == pytest.approx(scaling_ratio(w, costs, 3))
        assert w == allocate_to_ratio(act, costs, 3, x["ratio"], "full")
    # ... and not the per-neuron reading, which on this network allocates otherwise at 0.6
    rate = [r["rate"] for r in alloc["layers"]]
    assert alloc["allocations"][0]["windows"] != allocate_to_ratio(rate, costs, 3, 0.6, "full")
    assert set(alloc["noise"]["accuracy"]) == {r["layer"] for r in alloc["layers"]} and alloc["noise"]["u"] == 0.1
    # retraining starts looser than the ratio and its adjustments shorten the windows to it
    ck = teas_stage.load_retrained(str(a["retrained.pt"]))
    for e in ck["entries"]:
        assert e["start_windows"] == allocate_to_ratio(act, costs, 3, start_ratio(e["ratio"], 0.5), "full")
        assert e["windows"] != e["start_windows"]  # the adjustments moved them
        assert all(f <= s for f, s in zip(e["windows"], e["start_windows"]))  # never grew
        assert scaling_ratio(e["windows"], costs, 3) <= e["ratio"] + 1e-12  # the final one meets the ratio
    assert ck["schedule"]["lr"] == 5e-4 and ck["schedule"]["finetune_lr"] == 1e-4
    ev = read_json(a["evaluation.json"])
    variants = [(r["variant"], r["ratio"]) for r in ev["rows"]]
    # both ratios allocated and retrained, the ablation at the default ratio only
    assert variants == [(FIXED, 1.0), (ALLOCATION, 0.6), (ALLOCATION, 0.8), (RETRAINED, 0.6), (RETRAINED, 0.8), (NOREG, 0.6)]
    assert [r["windows"] for r in ev["rows"][3:5]] == [e["windows"] for e in ck["entries"]]
    fixed = ev["rows"][0]
    assert fixed["timestep_equivalents"] == pytest.approx(3.0) and fixed["windows"] == [3] * 5
    for r in ev["rows"][1:]:
        assert r["timestep_equivalents"] == pytest.approx(scaling_ratio(r["windows"], costs, 3) * 3)
        assert 0 <= r["accuracy"] <= 100 and r["energy_uj"] > 0 and 0 <= r["tied_share"] <= 1
    # the allocation's cost shrinks with its windows
    assert ev["rows"][1]["energy_uj"] <= fixed["energy_uj"]


def test_fixed_T_layer_major_matches_the_network_forward(project):
    """The evaluation's fixed-T row is the network's own accuracy at T (layer-major at equal windows)."""
    from seenn.common.io import read_json
    from seenn.data.files import open_split
    from seenn.data.spec import to_input
    from seenn.loops.predict import load_snn

    ev = read_json(_direct_chain(project, "run_c")["evaluation.json"])
    src = open_split(project / "test.pt")
    model, _ = load_snn(project / "snn.pt", src.spec)
    with torch.no_grad():
        pred = model(to_input(src.spec, src.x), 3).sum(0).argmax(-1)
    assert ev["rows"][0]["accuracy"] == pytest.approx(100.0 * float((pred == src.y).double().mean()))


def test_mnist_row_chain(project):
    """The MLP, its allocation under both top-window rules, retraining, the control trained as long."""
    from seenn.common.io import read_json
    from seenn.teas.allocation import scaling_ratio

    d = project
    teas_stage.stage_train_mnist(_ctx(d, "t", {"train": "train.pt", "val": "val.pt"},
                                      {"model": "mnist/snn.pt", "log": "mnist/train_log.csv"}, {"target": "mnist"}))
    teas_stage.stage_retrain_control(_ctx(d, "c", {"model": "mnist/snn.pt", "train": "train.pt"},
                                          {"model": "mnist/retrained_fixed.pt", "log": "mnist/retrain_fixed_log.csv"},
                                          {"target": "mnist"}))
    control = teas_stage.load_retrained(str(d / "mnist/retrained_fixed.pt"))
    assert control["entries"][0]["windows"] == [4, 4] and control["schedule"]["adjustment"] == "none"
    log = (d / "mnist/retrain_fixed_log.csv").read_text().splitlines()
    assert len(log) == 1 + 1 + 1  # header, the retraining epoch and the fine-tuning epoch: as long as TEAS's
    evs = {}
    for target in ("mnist_full", "mnist_scale"):
        ex = {"target": target}
        teas_stage.stage_allocate(_ctx(d, "a", {"model": "mnist/snn.pt", "val": "val.pt"},
                                       {"allocation": f"{target}/allocation.json"}, ex))
        teas_stage.stage_retrain(_ctx(d, "r", {"model": "mnist/snn.pt", "train": "train.pt",
                                               "allocation": f"{target}/allocation.json"},
                                      {"model": f"{target}/retrained.pt", "log": f"{target}/retrain_log.csv"},
                                      {**ex, "regularized": True}))
        teas_stage.stage_evaluate(_ctx(d, "e", {"model": "mnist/snn.pt", "test": "test.pt",
                                                "allocation": f"{target}/allocation.json",
                                                "retrained": f"{target}/retrained.pt",
                                                "retrained_fixed": "mnist/retrained_fixed.pt"},
                                       {"evaluation": f"{target}/evaluation.json"}, ex))
        evs[target] = read_json(d / f"{target}/evaluation.json")
        alloc = read_json(d / f"{target}/allocation.json")
        assert alloc["ratio_weights"] == "layers" and [a["ratio"] for a in alloc["allocations"]] == [0.5]
    full, scale = evs["mnist_full"], evs["mnist_scale"]
    assert full["T"] == 4 and full["layers"] == ["stem_act", "out_act"] and full["top_window"] == "full"
    assert full["paper"]["teas_avg_timesteps"] == 6.7 and full["paper"]["accuracy"] == 98.1
    for ev in (full, scale):
        assert [r["variant"] for r in ev["rows"]] == [FIXED, ALLOCATION, CONTROL, RETRAINED]
        assert ev["rows"][2]["windows"] == [4, 4] and all(0 <= r["tied_share"] <= 1 for r in ev["rows"])
    # full: the most active layer (the 16 hidden neurons' total, Eq. 2 as printed) keeps T, so the plain
    # average cannot go below (4 + 1) / 2; scale: every window shrinks to meet the ratio 0.5 (4 of 8 steps)
    assert full["rows"][1]["windows"][0] == 4 and full["rows"][1]["avg_window"] >= 2.5
    assert scaling_ratio(scale["rows"][1]["windows"], None, 4) <= 0.5 and scale["rows"][3]["avg_window"] <= 2.0


def test_report_tables_and_figures_from_the_stage_files(project, tmp_path):
    """The TEAS tables and the activity / allocation figures build from the evaluation files."""
    import pandas as pd

    from seenn.report import teas_pages
    from seenn.report.figures import save_png

    files = _direct_chain(project, "run_d")
    inputs = {"teas_evaluation_direct": str(files["evaluation.json"]), "teas_allocation_direct": str(files["allocation.json"])}
    tables, figures = teas_pages.declare_outputs(str(tmp_path / "t"), str(tmp_path / "f"), mnist=False)
    assert "teas_mnist_csv" not in tables
    teas_pages.write_tables(inputs, tables)
    res = pd.read_csv(tables["teas_csv"])
    assert list(res["variant"]) == [FIXED, ALLOCATION, ALLOCATION, RETRAINED, RETRAINED, NOREG]
    abl = pd.read_csv(tables["teas_ablation_csv"])
    assert list(abl["variant"]) == [FIXED, ALLOCATION, RETRAINED, NOREG] and set(abl["ratio"]) == {1.0, 0.6}
    windows = pd.read_csv(tables["teas_windows_csv"])
    assert len(windows) == 5 * len(pd.read_csv(tables["teas_activity_csv"]))
    from seenn.common.io import read_json

    save_png(teas_pages.activity_figure([read_json(files["allocation.json"])]), tmp_path / "a.png", 50)
    save_png(teas_pages.allocation_figure([read_json(files["evaluation.json"])]), tmp_path / "b.png", 50)
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "b.png").stat().st_size > 1000


def test_a_retrained_file_of_another_kind_is_refused(project, tmp_path):
    from seenn.common.io import save_checked

    save_checked(tmp_path / "x.pt", {"kind": "something else"})
    with pytest.raises(SeennError, match="not a TEAS retraining result"):
        teas_stage.load_retrained(str(tmp_path / "x.pt"))
