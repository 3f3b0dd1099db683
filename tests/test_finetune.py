"""The fine-tuning stage on a tiny SNN: epochs 0 passes the direct checkpoint through, epochs > 0
trains with the cumulative loss and writes a log row per epoch; the evaluate stage then also
saves train-split logits when asked."""

import pandas as pd
import torch

from seenn.common.artifacts import load_logits, save_snn
from seenn.common.io import load_checked, read_json, save_checked
from seenn.data.registry import get_spec
from seenn.models import build_snn
from seenn.stages.declaration import StageContext
from seenn.stages.evaluate import stage_evaluate_snn
from seenn.stages.finetune import stage_finetune_snn

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
MODEL = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}


def _files(tmp_path):
    spec = get_spec("digits")
    g = torch.Generator().manual_seed(0)
    paths = {}
    for split, n in (("train", 40), ("val", 20), ("test", 20)):
        x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
        y = torch.arange(n) % 10
        paths[split] = tmp_path / f"{split}.pt"
        save_checked(paths[split], {"dataset": "digits", "split": split, "x": x, "y": y})
    torch.manual_seed(0)
    paths["model"] = tmp_path / "direct.pt"
    save_snn(paths["model"], build_snn(MODEL, NEURON, 1, 10), model_cfg=MODEL, neuron_cfg=NEURON, timesteps=2, spec=spec)
    return paths


def _finetune(tmp_path, paths, epochs, tag):
    f = {"epochs": epochs, "batch_size": 20, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "loss": "cumulative",
         "augment": "none"}
    ctx = StageContext(name="finetune_snn", params={"seed": 1, "device": "cpu", "deterministic": True, "amp": "none", "loader": {"workers": 0, "pin_memory": False}, "finetune": f,
                                               "train": {"log_every": 1, "max_skipped_steps": 50, "compile": False, "tf32": False}},
                       inputs={"model": str(paths["model"]), "train": str(paths["train"]), "val": str(paths["val"])},
                       outputs={"model": str(tmp_path / f"ft_{tag}.pt"), "log": str(tmp_path / f"log_{tag}.csv")},
                       device=torch.device("cpu"), checkpoint_dir=tmp_path / f"ck_{tag}")
    stage_finetune_snn(ctx)
    return load_checked(ctx.outputs["model"]), pd.read_csv(ctx.outputs["log"]), ctx.outputs["model"]


def test_epochs_zero_passes_the_direct_checkpoint_through(tmp_path):
    paths = _files(tmp_path)
    ck, log, _ = _finetune(tmp_path, paths, 0, "off")
    direct = load_checked(paths["model"])
    assert all(torch.equal(direct["state_dict"][k], v) for k, v in ck["state_dict"].items())
    assert log.empty and list(log.columns) == ["epoch", "lr", "train_loss", "train_acc", "val_acc"]


def test_finetuning_changes_the_weights_and_logs_each_epoch(tmp_path):
    paths = _files(tmp_path)
    ck, log, model_path = _finetune(tmp_path, paths, 2, "on")
    direct = load_checked(paths["model"])
    assert any(not torch.equal(direct["state_dict"][k], v) for k, v in ck["state_dict"].items())
    assert log["epoch"].tolist() == [1, 2] and ck["timesteps"] == 2 and ck["model"] == MODEL

    ctx = StageContext(name="evaluate_finetuned", params={"device": "cpu", "deterministic": True, "loader": {"workers": 0, "pin_memory": False}, "evaluate": {"batch_size": 16}},
                       inputs={"model": model_path, "train": str(paths["train"]), "val": str(paths["val"]),
                               "test": str(paths["test"])},
                       outputs={s: str(tmp_path / f"{s}.out") for s in ("logits_train", "logits_val", "logits_test", "metrics")},
                       device=torch.device("cpu"), checkpoint_dir=tmp_path / "unused")
    stage_evaluate_snn(ctx)
    z, y = load_logits(ctx.outputs["logits_train"])
    assert z.shape == (40, 2, 10) and y.shape == (40,)
    assert set(read_json(ctx.outputs["metrics"])) >= {"train", "val", "test"}
