"""RMP conversion (`conversion.method: rmp`, methods/conversion.py): threshold balancing at a
percentile of each layer's positive ReLU outputs, ReLU -> IF (reset by subtraction, membrane from
0); the converted SNN approaches its ANN as T grows; checkpoints, stages and the key's refusal."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seenn.common import artifacts
from seenn.common.errors import SeennError
from seenn.common.io import load_checked, read_json, save_checked
from seenn.data.registry import get_spec
from seenn.data.source import TensorSource
from seenn.loops.predict import load_snn
from seenn.methods.conversion import (
    METHODS,
    RMP_INIT_FRACTION,
    _TopValues,
    balance_thresholds,
    convert_rmp,
    load_ann,
)
from seenn.models import TimeFold, build_relu_ann
from seenn.models.qcfs import build_qcfs_ann
from seenn.pipeline.config import load_schema, validate_config
from seenn.snn.neurons import IF
from seenn.stages.convert import stage_convert_snn
from seenn.stages.declaration import StageContext
from seenn.stages.train_ann import stage_train_ann

MODEL = {"arch": "resnet", "stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]}
DIGITS = get_spec("digits")
K = 10  # outputs: the digits spec's classes (the checkpoints record it)
CLASSES = 5  # labels the fixture images use (a short training learns them)
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # sized for one core (conftest.one_thread)


def _images(n: int, g: torch.Generator, side: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images side x side: a noisy copy of one of CLASSES fixed prototypes (the label)."""
    protos = torch.rand(CLASSES, 1, side, side, generator=torch.Generator().manual_seed(123))
    y = torch.randint(0, CLASSES, (n,), generator=g)
    x = (protos[y] + 0.3 * torch.randn(n, 1, side, side, generator=g)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8), y


def _trained_ann():
    """(a small ReLU ResNet trained 40 SGD steps on the prototypes, its training and test sources)."""
    g = torch.Generator().manual_seed(0)
    train, test = (TensorSource(DIGITS, *_images(n, g), split, "fixture") for n, split in ((512, "train"), (300, "test")))
    torch.manual_seed(0)
    ann = build_relu_ann(MODEL, 1, K)
    opt = torch.optim.SGD(ann.parameters(), lr=0.05, momentum=0.9)
    x = train.eval_inputs(torch.arange(len(train)))
    ann.train()
    for _ in range(40):
        i = torch.randint(0, len(train), (64,), generator=g)
        loss = F.cross_entropy(ann(x[i], 1)[0], train.y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ann.eval(), train, test


def test_converted_snn_agrees_with_its_ann_more_as_t_grows():
    """At the 99.99th percentile: at T = 128 the SNN's prediction (argmax of z_T) is the ANN's on
    >= 90 % of 300 test inputs, and the disagreement falls from T = 8 to 32 to 128."""
    ann, train, test = _trained_ann()
    lams = balance_thresholds(ann, train, 99.99, 128, CPU)
    snn = convert_rmp(ann, lams)
    x = test.eval_inputs(torch.arange(len(test)))
    with torch.no_grad():
        a = ann(x, 1)[0].argmax(-1)
        z = snn(x, 128).cumsum(0)
    assert float((a == test.y).double().mean()) > 0.6  # the ANN learned something (chance: 0.2)
    disagree = {T: float((z[T - 1].argmax(-1) != a).double().mean()) for T in (8, 32, 128)}
    assert disagree[128] <= 0.10, disagree
    assert disagree[8] > disagree[32] > disagree[128], disagree
    neurons = [m.neuron for m in snn.modules() if isinstance(m, TimeFold)]
    assert all(isinstance(n, IF) and n.init_fraction == RMP_INIT_FRACTION == 0.0 for n in neurons)
    assert [float(n.threshold) for n in neurons] == pytest.approx(list(lams.values()))
    assert not any(isinstance(m, nn.ReLU) for m in snn.modules())
    assert any(isinstance(m, nn.ReLU) for m in ann.modules())  # the ANN is left as it was


@pytest.mark.parametrize("p", [50.0, 99.0, 99.99, 100.0])
def test_thresholds_are_the_percentile_of_the_positive_activations(p):
    """Streaming (the largest values kept batch by batch) equals torch.quantile over every positive
    ReLU output of the balancing split (numpy's linear interpolation), layer by layer."""
    ann, train, _ = _trained_ann()
    outs: dict[str, list] = {}
    slots = {n: m for n, m in ann.named_modules() if isinstance(m, TimeFold)}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: outs.setdefault(n, []).append(o.detach().flatten()))
             for n, m in slots.items()]
    with torch.no_grad():
        ann(train.eval_inputs(torch.arange(len(train))), 1)
    for h in hooks:
        h.remove()
    lams = balance_thresholds(ann, train, p, 100, CPU)  # 6 batches, the last one short
    for name, chunks in outs.items():
        v = torch.cat(chunks).double()
        assert lams[name] == pytest.approx(float(torch.quantile(v[v > 0], p / 100)), rel=1e-9), name
    g = torch.Generator().manual_seed(1)
    top = _TopValues()
    batches = [torch.randn(37, generator=g) for _ in range(5)]
    for b in batches:
        top.add(b, 5 * 37, p)
    v = torch.cat(batches).double()
    assert top.percentile(p) == pytest.approx(float(torch.quantile(v[v > 0], p / 100)), rel=1e-12)


def test_refusals_name_the_layer_or_arch():
    with pytest.raises(SeennError, match=r"^model.arch 'resnet34' cannot be converted from a ReLU ANN: .*resnet34_avgpool"):
        build_relu_ann({"arch": "resnet34"}, 3, 10)
    assert any(isinstance(m, nn.AvgPool2d) for m in build_relu_ann({"arch": "resnet34_avgpool"}, 3, 10).layers[:1])
    qcfs = build_qcfs_ann(MODEL, 4, 1.0, 1, K)
    with pytest.raises(SeennError, match="activation slot 'stem_act' holds QCFS, not ReLU"):
        convert_rmp(qcfs, {})
    ann, train, _ = _trained_ann()
    with pytest.raises(SeennError, match=r"one threshold per activation slot"):
        convert_rmp(ann, {"stem_act": 1.0})
    with pytest.raises(SeennError, match=r"conversion.percentile must be in \(0, 100\]"):
        balance_thresholds(ann, train, 0.0, 64, CPU)
    with torch.no_grad():
        ann.layers[1].bn2.bias.fill_(-1e3)  # the last block's output never activates
    with pytest.raises(SeennError, match="ReLU layer 'layers.1.act2' never activates on the 512 balancing samples"):
        balance_thresholds(ann, train, 99.99, 128, CPU)


def test_checkpoints_round_trip_and_qcfs_files_keep_their_format(tmp_path):
    ann, train, test = _trained_ann()
    artifacts.save_ann(tmp_path / "ann.pt", ann, model_cfg=MODEL, levels=8, spec=DIGITS, method="rmp")
    ck = load_checked(tmp_path / "ann.pt")
    assert ck["kind"] == "relu_ann" and "levels" not in ck and artifacts.ann_method(ck) == "rmp"
    ann2, _ = load_ann(tmp_path / "ann.pt", DIGITS)
    x = test.eval_inputs(torch.arange(20))
    with torch.no_grad():
        assert torch.equal(ann2.eval()(x, 1), ann(x, 1))
    snn = convert_rmp(ann, balance_thresholds(ann, train, 99.99, 128, CPU))
    artifacts.save_converted(tmp_path / "snn.pt", snn, model_cfg=MODEL, levels=None, timesteps=16, spec=DIGITS,
                             init_fraction=RMP_INIT_FRACTION)
    rebuilt, ck = load_snn(tmp_path / "snn.pt", DIGITS)
    assert ck["init_fraction"] == 0.0 and ck["levels"] is None
    assert {m.neuron.init_fraction for m in rebuilt.modules() if isinstance(m, TimeFold)} == {0.0}
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x, 16), snn(x, 16))
    # QCFS: the converted file holds the keys it always held (no init_fraction), the ANN its kind and levels
    artifacts.save_converted(tmp_path / "q.pt", snn, model_cfg=MODEL, levels=8, timesteps=16, spec=DIGITS)
    assert set(load_checked(tmp_path / "q.pt")) == {"kind", "state_dict", "model", "levels", "timesteps", "stepwise",
                                                    "dataset", "num_classes"}
    artifacts.save_ann(tmp_path / "qa.pt", build_qcfs_ann(MODEL, 8, 1.0, 1, K), model_cfg=MODEL, levels=8, spec=DIGITS)
    assert artifacts.ann_method(load_checked(tmp_path / "qa.pt")) == "qcfs"


@pytest.mark.parametrize("key,value", [("method", "snn"), ("method", "RMP"), ("percentile", 0), ("percentile", 100.5),
                                       ("balance_samples", -1)])
def test_a_bad_conversion_value_is_refused_in_one_line(default_config, key, value):
    default_config["conversion"][key] = value
    with pytest.raises(SeennError) as exc:
        validate_config(default_config)
    msg = str(exc.value)
    assert f"invalid value for 'conversion.{key}'" in msg and "\n" not in msg
    if key == "method":
        assert "['qcfs', 'rmp']" in msg


def test_the_schema_offers_the_methods_the_code_has(default_config):
    assert load_schema()["properties"]["conversion"]["properties"]["method"]["enum"] == list(METHODS)
    assert default_config["conversion"]["method"] == "qcfs"  # the default keeps the QCFS branch's outputs


def _stage_params(method: str) -> dict:
    c = {"method": method, "levels": 4, "lambda_init": 1.0, "percentile": 99.9, "balance_samples": 100, "epochs": 1,
         "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "augment": "none", "max_timesteps": 8}
    return {"seed": 1, "device": "cpu", "deterministic": True, "amp": "none", "loader": {"workers": 0, "pin_memory": False},
            "model": MODEL, "conversion": c, "evaluate": {"batch_size": 50},
            "train": {"log_every": 1, "max_skipped_steps": 50, "compile": False, "tf32": False}}


def test_train_ann_and_convert_stages_run_rmp(tmp_path):
    """train_ann trains the ReLU ANN, convert_snn balances it on the training split's first
    `balance_samples` and writes an IF SNN (membrane from 0) and the thresholds; a checkpoint of the
    other method is refused naming conversion.method."""
    g = torch.Generator().manual_seed(0)
    paths = {}
    for split, n in (("train", 160), ("val", 40), ("test", 40)):
        x, y = _images(n, g, side=28)  # the digits' shape, which the stages check
        paths[split] = str(tmp_path / f"{split}.pt")
        save_checked(paths[split], {"dataset": "digits", "split": split, "x": x, "y": y})
    p = _stage_params("rmp")
    out = {"model": str(tmp_path / "ann.pt"), "log": str(tmp_path / "ann_log.csv")}
    stage_train_ann(StageContext("train_ann", p, {k: paths[k] for k in ("train", "val")}, out, CPU, tmp_path / "ck"))
    assert load_checked(out["model"])["kind"] == "relu_ann"
    conv = {"model": str(tmp_path / "snn.pt"), "ann_metrics": str(tmp_path / "ann_metrics.json")}
    stage_convert_snn(StageContext("convert_snn", p, {"ann": out["model"], **paths}, conv, CPU, tmp_path / "ck2"))
    m = read_json(conv["ann_metrics"])
    assert m["method"] == "rmp" and m["percentile"] == 99.9 and m["balance_samples"] == 100 and m["init_fraction"] == 0.0
    assert set(m["thresholds"]) == {"stem_act", "layers.0.act1", "layers.0.act2", "layers.1.act1", "layers.1.act2"}
    assert all(v > 0 for v in m["thresholds"].values()) and 0 <= m["test"]["accuracy"] <= 100
    snn, ck = load_snn(conv["model"], DIGITS)
    assert ck["init_fraction"] == 0.0 and ck["timesteps"] == 8
    assert {n: float(s.neuron.threshold) for n, s in snn.named_modules() if isinstance(s, TimeFold)} == pytest.approx(
        m["thresholds"])
    with pytest.raises(SeennError, match=r"holds the ANN of conversion.method 'rmp', but 'conversion.method' is 'qcfs': "
                                         r"rerun train_ann"):
        stage_convert_snn(StageContext("convert_snn", _stage_params("qcfs"), {"ann": out["model"], **paths}, conv, CPU,
                                       tmp_path / "ck3"))
