"""Every paper row (config/paper/<row>.yaml) is a config that runs: it validates, names a row of
config/paper/numbers.yaml, `snakemake -n` plans its whole DAG, and its networks take one training
step and one evaluation step on a fixture batch (offline, CPU: a reduced input size where the
real one is too slow, the real shapes otherwise)."""

from __future__ import annotations

import re

import pytest
import torch
import yaml
from conftest import PAPER_CONFIGS, ROOT, dvc_changed, make_project, paper_config, sh

from seenn.pipeline.config import validate_config

NUMBERS = yaml.safe_load((ROOT / "config/paper/numbers.yaml").read_text())
METRICS = ("fixed_t_accuracy", "seenn1_accuracy", "seenn1_avg_timesteps", "seenn2_accuracy", "seenn2_avg_timesteps",
           "aet", "empirical_aet")
TABLE2 = ("ann_accuracy", "snn_accuracy", "reduced_accuracy", "reduced_timesteps")  # the TEAS paper's Table 2 columns


def is_teas_row(row: str) -> bool:
    """A TEAS paper Table 2 row of a converted SNN (teas.only), not a SEENN row."""
    return row.startswith("teas_")
FIXTURE_SIDE = 64  # ImageNet networks take 64 px fixture images here (adaptive pooling: same layers as at 224)
FIXTURE_TIMESTEPS = 2  # enough to exercise the recurrence; the configured T runs in the planned DAG


def row_id(path) -> str:
    return path.stem


def test_every_overlay_is_a_row_of_the_numbers_file_and_back():
    assert sorted(row_id(p) for p in PAPER_CONFIGS) == sorted(NUMBERS)


@pytest.mark.parametrize("row", sorted(NUMBERS))
def test_the_numbers_file_holds_only_numbers_or_blanks(row):
    entry = NUMBERS[row]
    columns = TABLE2 if is_teas_row(row) else METRICS
    assert set(entry) == {"title", "source", "max_timesteps", *columns}
    for key in columns:
        assert entry[key] is None or isinstance(entry[key], (int, float)), (row, key)


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=row_id)
def test_each_row_config_names_its_row_and_its_timesteps(path):
    cfg = validate_config(paper_config(path))
    assert cfg["report"]["paper_row"] == row_id(path)
    max_t = NUMBERS[row_id(path)]["max_timesteps"]
    if is_teas_row(row_id(path)):  # a TEAS Table 2 row: the converted SNN at the original T, TEAS at its reduced T
        row = NUMBERS[row_id(path)]
        assert cfg["teas"]["only"] and cfg["teas"]["retrain_converted"] and cfg["conversion"]["method"] == "rmp"
        assert cfg["conversion"]["max_timesteps"] == max_t and cfg["teas"]["ratio_weights"] == "layers"
        assert cfg["teas"]["ratio"] * max_t == pytest.approx(row["reduced_timesteps"], abs=0.01)
        assert cfg["teas"]["epochs"] == 30 and (cfg["teas"]["lr"], cfg["teas"]["finetune_lr"], cfg["teas"]["decay"]) == (
            5e-4, 1e-4, 0.99)  # Table 1
    elif max_t is not None:  # a Table 5 row: the SNN runs the paper's T
        assert cfg["train"]["timesteps"] == max_t


def planned_jobs(project) -> dict[str, int]:
    """rule -> job count from `snakemake -n`'s job stats table."""
    out = sh(project, "snakemake", "-n", "--cores", "1").stdout
    stats = out.split("Job stats:", 1)[1]
    rows = re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M)
    return {rule: int(n) for rule, n in rows if rule != "total"}


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=row_id)
def test_snakemake_plans_the_whole_dag_of_each_row(path, tmp_path):
    from seenn.pipeline.table import build_stages

    cfg = validate_config(paper_config(path))
    project = make_project(tmp_path / "p", cfg)
    jobs = planned_jobs(project)
    expected = {st.name for st in build_stages(cfg)}
    assert set(jobs) - {"all"} == expected
    assert all(n == 1 for rule, n in jobs.items())
    if cfg["teas"]["only"]:  # a TEAS row: TEAS on the converted SNN, retrained, and no exit rule; DVC agrees
        assert {"convert_snn", "teas_retrain_converted", "teas_evaluate_converted"} <= expected
        assert not [n for n in expected if "direct" in n or "seenn" in n or "guarantee" in n]
        assert {"teas_retrain_converted", "report"} <= dvc_changed(project)
        return
    # every row runs the guarantee rules on each of its SNNs (and the engine stages beside SEENN-I)
    branches = {"direct", "finetuned"} | ({"converted"} if cfg["conversion"]["enabled"] else set())
    assert {f"guarantee_{b}" for b in branches} <= expected
    if not cfg["conversion"]["enabled"]:
        assert not any("convert" in name for name in expected)


def fixture_batch(spec, n: int = 2):
    """A fixture batch in the stored format of the dataset (uint8 images or float16 event frames)."""
    g = torch.Generator().manual_seed(0)
    shape = list(spec.input_shape)
    if spec.event:
        shape[0] = FIXTURE_TIMESTEPS
        x = (torch.rand(n, *shape, generator=g) < 0.2).to(torch.float16)
    else:
        if shape[-1] > FIXTURE_SIDE:
            shape[-2:] = [FIXTURE_SIDE, FIXTURE_SIDE]
        x = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    return x, torch.arange(n) % spec.num_classes


def one_step(model, criterion, source, augment: str, timesteps: int, stepwise_eval: bool = False):
    """One SGD step on the fixture batch, augmented as the row trains (one batch of
    `training.ShuffledBatches`), then its per-timestep logits."""
    from seenn.loops.fit import ShuffledBatches, train_one_epoch
    from seenn.loops.predict import predict_logits

    data = ShuffledBatches(source, len(source), augment, torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    m = train_one_epoch(model, criterion, opt, data, torch.device("cpu"), timesteps=timesteps)
    assert torch.isfinite(torch.tensor(m["train_loss"]))
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters())), "the step changed no weight"
    return predict_logits(model, source, FIXTURE_TIMESTEPS, 2, torch.device("cpu"), stepwise=stepwise_eval)


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=row_id)
def test_each_row_trains_and_evaluates_one_step_on_a_fixture_batch(path):
    from seenn.data.registry import get_spec
    from seenn.data.source import TensorSource
    from seenn.loops.predict import predict_logits
    from seenn.methods.conversion import convert
    from seenn.methods.policy.inputs import policy_input
    from seenn.models import build_snn
    from seenn.models.policy import build_policy
    from seenn.models.qcfs import build_qcfs_ann
    from seenn.snn.losses import ann_loss, snn_criterion

    torch.manual_seed(0)
    cfg = validate_config(paper_config(path))
    spec = get_spec(cfg["data"]["name"])
    x, y = fixture_batch(spec)
    source = TensorSource(spec, x, y, "train", "fixture batch")
    expected = (x.shape[0], FIXTURE_TIMESTEPS, spec.num_classes)
    if cfg["teas"]["only"]:
        return teas_row_step(cfg, spec, source)
    t = cfg["train"]
    snn = build_snn(cfg["model"], cfg["neuron"], spec.input_shape[-3], spec.num_classes, event=spec.event)
    z = one_step(snn, snn_criterion(t["loss"], t["tet_lambda"], t["tet_phi"]), source, t["augment"], FIXTURE_TIMESTEPS)
    assert z.shape == expected and torch.isfinite(z).all()
    s = cfg["seenn2"]
    policy = build_policy(spec.input_shape[-3], t["timesteps"], s["policy_stem_channels"], s["policy_widths"],
                          s["policy_stem_stride"])
    assert policy(policy_input(spec, x)).shape == (x.shape[0], t["timesteps"])
    if cfg["conversion"]["enabled"]:  # the QCFS ANN's step, then the converted IF SNN, one timestep at a time
        c = cfg["conversion"]
        ann = build_qcfs_ann(cfg["model"], c["levels"], c["lambda_init"], spec.input_shape[-3], spec.num_classes)
        one_step(ann, ann_loss, source, c["augment"], 1)
        z = predict_logits(convert(ann), source, FIXTURE_TIMESTEPS, 2, torch.device("cpu"), stepwise=True)
        assert z.shape == expected and torch.isfinite(z).all()


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.name)
def test_overlays_switch_teas_off_where_its_core_cannot_run(path):
    """TEAS's layer-major core runs ResNets of BasicBlocks and VGG-16: the other rows set teas.enabled false."""
    from seenn.pipeline.config import TEAS_ARCHS, validate_config

    cfg = paper_config(path)
    assert cfg["model"]["arch"] in TEAS_ARCHS or not cfg["teas"]["enabled"]
    validate_config(cfg)


def teas_row_step(cfg: dict, spec, source) -> None:
    """A TEAS row's networks, one step each on the fixture batch: the ReLU ANN's SGD step, RMP's
    thresholds balanced on it and the conversion, the converted SNN's kept logits, and one Adam step
    of TEAS's retraining through the layer-major run at small windows (the row's T runs in the DAG)."""
    from seenn.loops.predict import predict_logits
    from seenn.methods.conversion import balance_thresholds, convert_rmp
    from seenn.models import build_relu_ann
    from seenn.snn.losses import ann_loss
    from seenn.teas import layerwise

    c = cfg["conversion"]
    ann = build_relu_ann(cfg["model"], spec.input_shape[-3], spec.num_classes, image_size=source.x.shape[-1])
    one_step(ann, ann_loss, source, c["augment"], 1)
    snn = convert_rmp(ann, balance_thresholds(ann, source, c["percentile"], 2, torch.device("cpu")))
    z = predict_logits(snn, source, FIXTURE_TIMESTEPS, 2, torch.device("cpu"), stepwise=True, keep=[FIXTURE_TIMESTEPS])
    assert z.shape == (len(source), 1, spec.num_classes) and torch.isfinite(z).all()
    L = len(layerwise.spiking_layers(snn))
    windows = [FIXTURE_TIMESTEPS] + [1] * (L - 1)  # layer-wise windows, Eq. 3 between them
    snn.train()
    opt = torch.optim.Adam(snn.parameters(), lr=cfg["teas"]["lr"])
    out = layerwise.run(snn, source.x.float().div(255), windows, cfg["teas"]["conversion"], expansion=cfg["teas"]["expansion"])
    loss = torch.nn.functional.cross_entropy(out.mean_logits(), source.y)
    opt.zero_grad()
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in snn.parameters())
    opt.step()
