"""The TEAS paper's ResNet-20 / CIFAR-10 row (config/paper/teas_resnet20_cifar10.yaml) runs end to end
on fixture data at a small T: the stage table of its config (teas.only) is run stage by stage in this
process, each stage function given its declared config slice as `seenn run` gives it: train_ann (RMP's
ReLU ANN) -> convert_snn -> evaluate_converted (logits at the kept timesteps) -> teas_allocate_converted
-> teas_retrain_converted -> teas_evaluate_converted -> tables (with the paper's Table 2 row) ->
figures -> report. Only the data (fixture images in CIFAR-10's format), the sizes and T differ from
the row."""

import importlib

import pandas as pd
import pytest
import torch
from conftest import ROOT, paper_config

from seenn.common.io import read_json, save_checked, write_json
from seenn.pipeline.config import apply_overrides, select_keys, validate_config
from seenn.pipeline.table import build_stages
from seenn.stages.declaration import StageContext

T = 8  # the row's T is 2048: here the chain at 8 steps
SHRINK = {  # fixture sizes: a narrow ResNet-20-shaped net, few samples, one short epoch each
    "model": {"arch": "resnet", "stem_channels": 8, "widths": [8, 8, 8], "blocks": [3, 3, 3]},  # ResNet-20's depth
    "conversion": {"max_timesteps": T, "keep_timesteps": [1, 2, 4], "epochs": 6, "batch_size": 32, "lr": 0.1, "balance_samples": 64,
                   "augment": "none"},
    "evaluate": {"batch_size": 50},
    "teas": {"ratio": 0.25, "ratios": [0.25], "epochs": 2, "adjust_every": 1, "finetune_epochs": 1, "retrain_samples": 48,
             "retrain_batch_size": 16, "converted_samples": 40, "converted_batch_size": 20, "profile_samples": 40,
             "noise_samples": 20, "log_every": 1},
    "figures": {"dpi": 50},
    "device": "cpu", "requires_gpu": False,
}


def _fixture_splits(root) -> None:
    """CIFAR-10-shaped uint8 images: a noisy copy of one of 10 fixed prototypes (the label), and the
    manifest prepare_data would write."""
    protos = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(0)
    manifest = {"dataset": "cifar10", "source": "fixture prototypes", "seed": 1000, "splits": {}}
    for split, n in (("train", 256), ("val", 40), ("test", 40)):
        y = torch.arange(n) % 10
        x = ((protos[y] + 0.15 * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1) * 255).round().to(torch.uint8)
        save_checked(root / f"data/prepared/{split}.pt", {"dataset": "cifar10", "split": split, "x": x, "y": y})
        manifest["splits"][split] = {"n": n, "sha256": "0" * 64}
    write_json(root / "data/prepared/manifest.json", manifest)


def test_the_resnet20_row_runs_its_teas_chain_on_the_converted_snn(tmp_path, monkeypatch):
    cfg = paper_config(ROOT / "config/paper/teas_resnet20_cifar10.yaml")
    for key, value in SHRINK.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    cfg = validate_config(cfg)
    assert cfg["teas"]["only"] and cfg["teas"]["retrain_converted"] and cfg["conversion"]["method"] == "rmp"
    table = build_stages(cfg)
    assert [st.name for st in table] == ["prepare_data", "train_ann", "convert_snn", "evaluate_converted",
                                         "teas_allocate_converted", "teas_retrain_converted", "teas_evaluate_converted",
                                         "tables", "figures", "report"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config/paper").mkdir(parents=True)
    (tmp_path / "config/paper/numbers.yaml").write_text((ROOT / "config/paper/numbers.yaml").read_text())
    _fixture_splits(tmp_path)
    torch.set_num_threads(1)
    for st in table[1:]:
        module, func = st.func.split(":")
        ctx = StageContext(name=st.name, params=select_keys(apply_overrides(cfg, st.overrides), st.params),
                           inputs=dict(st.inputs), outputs=dict(st.outputs), device=torch.device("cpu"),
                           checkpoint_dir=tmp_path / st.checkpoint_dir, extras=dict(st.options))
        getattr(importlib.import_module(module), func)(ctx)
        assert all((tmp_path / p).exists() for p in st.outputs.values()), st.name

    metrics = read_json("results/converted/metrics.json")["test"]
    assert metrics["kept_timesteps"] == [1, 2, 4, T] and len(metrics["accuracy_per_kept_t"]) == 4
    ann = read_json("results/converted/ann_metrics.json")
    assert ann["method"] == "rmp" and ann["test"]["accuracy"] > 50  # the prototypes are learnable
    ev = read_json("results/teas/converted/evaluation.json")
    rows = pd.DataFrame(ev["rows"])
    assert ev["T"] == T and set(rows["variant"]) == {"fixed T", "TEAS allocation (no retraining)", "TEAS retrained"}
    retrained = rows[rows["variant"] == "TEAS retrained"].iloc[0]
    assert sum(retrained["windows"]) / len(retrained["windows"]) <= 0.25 * T + 1e-9  # the plain average meets the ratio
    assert retrained["avg_window"] == pytest.approx(sum(retrained["windows"]) / len(retrained["windows"]))
    assert ev["schedule"]["epochs"] == 2 and ev["schedule"]["lr"] == 5e-4 and ev["schedule"]["finetune_lr"] == 1e-4
    paper = pd.read_csv("results/tables/paper_comparison.csv").set_index("metric")
    assert paper.loc["ANN accuracy (%)", "paper"] == "91.47" or float(paper.loc["ANN accuracy (%)", "paper"]) == 91.47
    assert float(paper.loc["TEAS averaged time steps", "this_run"]) == pytest.approx(retrained["avg_window"])
    assert float(paper.loc["original T", "this_run"]) == T
    assert (tmp_path / "reports/seenn_report.pdf").stat().st_size > 10_000
