"""SEENN-II policy training: reward, weighting, both gradient estimators, learning a known
per-timestep-correctness table, determinism and resuming."""

import math

import pytest
import torch

from seenn.methods.exits import policy_exit
from seenn.methods.policy.estimators import expected_loss, reinforce_loss, reward_table, sample_weights
from seenn.methods.policy.training import fit_policy
from seenn.models.policy import build_policy
from seenn.methods.policy.selection import compare_cells

CFG = {"epochs": 12, "batch_size": 32, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "reward_base": 2.0,
       "policy_stem_channels": 8, "policy_widths": [8, 16], "policy_stem_stride": 1}


def test_reward_values():
    c = torch.tensor([[True, False, True, True], [False, False, False, False]])
    r = reward_table(c, beta=3.0, base=2.0)
    assert r.tolist() == [[1.0, -3.0, 0.25, 0.125], [-3.0, -3.0, -3.0, -3.0]]
    assert reward_table(c, beta=0.5, base=4.0)[0].tolist() == [1.0, -0.5, 1 / 16, 1 / 64]


def test_authors_sample_weighting():
    c = torch.tensor([[True, True]] * 3 + [[False, True]])  # accuracy at t=1: r = 0.75
    assert sample_weights(c, False).tolist() == [1, 1, 1, 1]
    assert sample_weights(c, True).tolist() == pytest.approx([1, 1, 1, 3.0])  # r / (1 - r)
    # the weighted hard samples carry as much total weight as the easy ones
    w = sample_weights(c, True)
    assert w[~c[:, 0]].sum() == pytest.approx(w[c[:, 0]].sum())
    assert sample_weights(torch.ones(5, 2, dtype=torch.bool), True).tolist() == [1] * 5


def _toy_grads(correct_row, estimator, n=4096, seed=0):
    """Gradient of the loss w.r.t. shared action logits theta for n copies of one sample."""
    theta = torch.zeros(len(correct_row), requires_grad=True)
    c = torch.tensor([correct_row] * n)
    rewards, w = reward_table(c, beta=1.0), torch.ones(n)
    logits = theta.expand(n, -1)
    if estimator == "reinforce":
        loss, _ = reinforce_loss(logits, rewards, w, torch.Generator().manual_seed(seed))
    else:
        loss, _ = expected_loss(logits, rewards, w)
    loss.backward()
    return theta.grad


@pytest.mark.parametrize("estimator", ["expected", "reinforce"])
def test_gradient_sign_on_two_action_toy(estimator):
    # wrong at u=1, right at u=2: R = [-1, 0.5]; descending the loss must favour u=2
    g = _toy_grads([False, True], estimator)
    assert g[1] < 0 < g[0]
    # right at both: R = [1, 0.5]; stopping at u=1 is better
    g = _toy_grads([True, True], estimator)
    assert g[0] < 0 < g[1]


def test_reinforce_baseline_leaves_each_sample_out():
    """Each row's reward is the same for both actions, so the sampled rewards are known: r = [1,
    0.25, -3]. Leave-one-out baselines: b = [(0.25 - 3)/2, (1 - 3)/2, (1 + 0.25)/2] = [-1.375, -1,
    0.625]; with w = [1, 1, 3] the advantages are [2.375, 1.25, 3 * -3.625 = -10.875] (the batch
    mean -0.5833 would give [1.5833, 0.8333, -7.25]). Uniform logits: log pi(u) = -log 2 whatever
    u is, so loss = log 2 * mean(advantage) = log 2 * -7.25 / 3, and each logit row's gradient is
    -(adv_i / 3) (onehot(u_i) - 1/2), i.e. +-adv_i / 6."""
    logits = torch.zeros(3, 2, requires_grad=True)
    rewards = torch.tensor([[1.0, 1.0], [0.25, 0.25], [-3.0, -3.0]])
    loss, r = reinforce_loss(logits, rewards, torch.tensor([1.0, 1.0, 3.0]), torch.Generator().manual_seed(0))
    assert r.tolist() == [1.0, 0.25, -3.0]
    assert loss.item() == pytest.approx(math.log(2) * -7.25 / 3, rel=1e-6)
    loss.backward()
    assert torch.allclose(logits.grad.abs(), torch.tensor([[2.375], [1.25], [10.875]]).expand(3, 2) / 6)
    # a batch of one has no other sample: baseline 0, advantage = w * r = 0.5, loss = 0.5 log 2
    loss, _ = reinforce_loss(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]), torch.ones(1), torch.Generator())
    assert float(loss) == pytest.approx(0.5 * math.log(2), rel=1e-6)


def test_reinforce_agrees_with_exact_expected_gradient():
    exact = _toy_grads([False, True, True], "expected")
    sampled = _toy_grads([False, True, True], "reinforce", n=20000)
    assert torch.nn.functional.cosine_similarity(exact, sampled, dim=0) > 0.95


def synthetic(n: int, seed: int):
    """8x8 images whose bright 2x2 patch sits at one of three places; a sample whose patch is at
    place k is correct from timestep k on (T = 3). The policy should learn u = k."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(1, 4, (n,), generator=g)
    x = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    for i, ki in enumerate(k.tolist()):
        r = 2 * (ki - 1) + 1
        x[i, 0, r : r + 2, r : r + 2] += 3.0
    correct = torch.arange(1, 4)[None, :] >= k[:, None]
    return x, correct, k


@pytest.mark.parametrize("estimator, epochs", [("expected", 10), ("reinforce", 15)])
def test_policy_learns_the_first_correct_timestep(tmp_path, estimator, epochs):
    x, c, _ = synthetic(480, seed=1)
    policy, rows = fit_policy(x, c, cfg=CFG, beta=1.0, estimator=estimator, weighting=False, epochs=epochs,
                              in_channels=1, seed=0, device=torch.device("cpu"), ckpt_dir=tmp_path, fp="t", desc="toy")
    xt, _, kt = synthetic(300, seed=2)
    with torch.no_grad():
        u = policy_exit(policy.eval()(xt))
    assert (u == kt).double().mean() > 0.95
    assert rows[-1]["mean_reward"] > rows[0]["mean_reward"]
    assert set(rows[-1]) >= {"epoch", "lr", "mean_reward", "mean_u", "accuracy"}


@pytest.mark.parametrize("estimator", ["expected", "reinforce"])
def test_training_is_deterministic_and_resumes_exactly(tmp_path, estimator):
    x, c, _ = synthetic(64, seed=3)
    cfg = {**CFG, "epochs": 3}

    def run(d):
        return fit_policy(x, c, cfg=cfg, beta=1.0, estimator=estimator, weighting=True, epochs=3, in_channels=1, seed=5,
                          device=torch.device("cpu"), ckpt_dir=d, fp="t", desc="det")

    a, rows_a = run(tmp_path / "a")
    b, rows_b = run(tmp_path / "b")
    (tmp_path / "b" / "epoch_0003.pt").unlink()  # "killed" during epoch 3: resume from epoch 2
    c2, rows_c = run(tmp_path / "b")
    for other in (b, c2):
        for (k, v), (_, w) in zip(a.state_dict().items(), other.state_dict().items()):
            assert torch.equal(v, w), k
    assert rows_a == rows_b == rows_c


def test_policy_network_is_the_papers_resnet8():
    p = build_policy(3, 4, 16, [16, 32, 64])
    convs = [m for m in p.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert [m.out_channels for m in convs] == [16, 16, 16, 32, 32, 64, 64]  # stem + 3 blocks x 2 convs (+ FC = 8 layers)
    assert p(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def test_compare_grid_puts_the_configured_policy_first():
    table6 = {"policy_stem_channels": 16, "policy_widths": [16, 32, 64], "policy_stem_stride": 1}
    cfg = {"beta": 2.0, "estimator": "expected", "train_split": "train", "sample_weighting": True, **table6}
    main = {"beta": 2.0, "estimator": "expected", "train_split": "train", "sample_weighting": True, "variant": "paper",
            "policy": "configured"}
    cells = compare_cells(cfg)
    assert cells[0] == main and len(cells) == 5 and all(c["beta"] == 2.0 for c in cells)
    assert cells[1] == {**main, "estimator": "reinforce"}
    assert {(c["train_split"], c["sample_weighting"]) for c in cells[2:]} == {("val", False), ("val", True), ("train", False)}
    assert all(c["estimator"] == "expected" for c in cells[2:])
    # a narrower policy than the paper's Table 6: the Table 6 one is trained beside it
    narrow = compare_cells({**cfg, "policy_widths": [6, 12, 24]})
    assert narrow[:5] == cells and narrow[5] == {**main, "policy": "table6"}


def test_action_grids_and_reward_shapes():
    from seenn.methods.policy.estimators import VARIANTS, action_grid

    assert action_grid("all", 4) == [1, 2, 3, 4]
    assert action_grid("powers_of_two", 64) == [1, 2, 4, 8, 16, 32, 64]
    assert action_grid("powers_of_two", 6) == [1, 2, 4, 6]
    c = torch.tensor([[True, False, True, True, False, True]])
    # linear: 1 - (u - 1) / T at the grid's u, -beta where wrong
    assert reward_table(c, beta=2.0, shape="linear", grid=[1, 2, 4, 6]).tolist()[0] == pytest.approx([1.0, -2.0, 0.5, 1 / 6])
    assert reward_table(c, beta=2.0, base=2.0, grid=[1, 2, 4, 6]).tolist() == [[1.0, -2.0, 0.125, 1 / 32]]
    assert set(VARIANTS) >= {"paper"} and VARIANTS["paper"] == ("all", "exponential")


def test_select_variant_uses_seenn1s_rule():
    import pandas as pd

    from seenn.methods.policy.selection import select_variant

    pts = pd.DataFrame({"variant": ["paper", "pow2", "linear"], "val_accuracy": [97.0, 96.2, 96.9],
                        "val_avg_timesteps": [30.0, 9.0, 12.0]})
    assert pts["variant"][select_variant(pts, 97.0, 0.2)] == "linear"  # pow2 is cheaper but 0.8 points below
    assert pts["variant"][select_variant(pts, 97.0, 1.0)] == "pow2"
    assert pts["variant"][select_variant(pts, 99.0, 0.1)] == "paper"  # none within: the most accurate


def test_variants_schema_enum_matches_the_registry():
    from seenn.methods.policy.estimators import VARIANTS
    from seenn.pipeline.config import load_schema
    from seenn.pipeline.table import CONVERTED_VARIANTS

    enum = load_schema()["properties"]["conversion"]["properties"]["seenn2_variant"]["enum"]
    assert enum == ["validation", *VARIANTS] and set(CONVERTED_VARIANTS) <= set(VARIANTS)


def test_engine_loads_the_main_policy_and_averages_event_frames(tmp_path):
    """seenn2_evaluate's single-policy file loads as the engine's policy network; on event data
    it sees the mean frame, as in training; a file of several policies is refused."""
    from dataclasses import replace

    from seenn.common.artifacts import save_policies
    from seenn.common.errors import SeennError
    from seenn.data.registry import get_spec
    from seenn.methods.policy.loading import EventMean, load_policy

    cfg = {"policy_stem_channels": 4, "policy_widths": [4, 8], "policy_stem_stride": 2}
    net = build_policy(1, 3, 4, [4, 8], 2, grid=[1, 2, 4])
    entry = {"beta": 1.0, "estimator": "expected", "train_split": "val", "sample_weighting": False,
             "state_dict": net.state_dict()}
    digits = get_spec("digits")
    save_policies(tmp_path / "one.pt", [entry], cfg=cfg, in_channels=1, timesteps=4, grid=[1, 2, 4], dataset=digits.name)
    x = torch.randn(5, 1, 28, 28)
    loaded = load_policy(tmp_path / "one.pt", digits)
    assert torch.equal(loaded(x), net.eval()(x)) and loaded.grid == [1, 2, 4]
    # the engine maps the chosen action to its timestep on the grid
    from seenn.methods import engine

    u = engine.policy_exits(engine.Policy.from_network(loaded), x, 4)
    assert torch.equal(u, torch.tensor([1, 2, 4])[net(x).argmax(-1)])
    frames = torch.randn(5, 4, 1, 28, 28)
    event = load_policy(tmp_path / "one.pt", replace(digits, event=True))
    assert isinstance(event, EventMean) and torch.allclose(event(frames), net(frames.mean(1)))
    save_policies(tmp_path / "two.pt", [entry, entry], cfg=cfg, in_channels=1, timesteps=4, grid=[1, 2, 4],
                  dataset=digits.name)
    with pytest.raises(SeennError, match="holds 2 policies"):
        load_policy(tmp_path / "two.pt", digits)


def test_policy_costs_the_papers_share_of_resnet19():
    """Counted on the real models of the paper config: the ResNet-8 policy's MACs are 0.547 % of
    one ResNet-19 timestep on 32x32 CIFAR-10 images, the share the paper reports."""
    from conftest import ROOT, paper_config

    from seenn.models import build_snn
    from seenn.snn.ops import ann_macs, snn_macs

    cfg = paper_config(ROOT / "config/paper/resnet19_cifar10.yaml")
    s = cfg["seenn2"]
    policy = build_policy(3, cfg["train"]["timesteps"], s["policy_stem_channels"], s["policy_widths"])
    snn = build_snn(cfg["model"], cfg["neuron"], 3, 10)
    p, o = ann_macs(policy, (3, 32, 32)), snn_macs(snn, (3, 32, 32))
    assert 100 * p["macs"] / (o["fixed"] + o["per_timestep"]) == pytest.approx(0.547, abs=0.0005)
