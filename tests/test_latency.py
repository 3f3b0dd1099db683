"""Latency summaries (latency.py `paired_ratio`, `summarize`) on synthetic timing tables with
hand-computed results: no timing is measured here."""

import pytest

from seenn.methods.latency import paired_ratio, reachable_speedup, summarize

ANN = "ANN (same architecture)"


def test_paired_ratio_is_the_median_of_per_round_ratios():
    # per round: 10/5 = 2, 2/4 = 0.5, 3/1 = 3 -> median 2 (the ratio of medians would be 3/4)
    assert paired_ratio([10.0, 2.0, 3.0], [5.0, 4.0, 1.0]) == pytest.approx(2.0)
    # an even number of rounds: ratios 1, 2, 3, 4 -> median 2.5
    assert paired_ratio([1.0, 4.0, 9.0, 16.0], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(2.5)


def row(method, bs, rounds, cpu, speedup=None, cpu_speedup=None, ideal=None, min_s=None, T=2):
    import statistics

    return {"method": method, "batch_size": bs, "rounds_s": rounds, "rounds_cpu_s": cpu,
            "seconds_per_sample": statistics.median(rounds),  # one sample
            "min_s": min(rounds) if min_s is None else min_s, "speedup_vs_fixed_T": speedup,
            "cpu_speedup_vs_fixed_T": cpu_speedup, "ideal_speedup": ideal, "avg_timesteps": T / ideal if ideal else None}


def test_reachable_speedup_counts_the_work_done_once_per_sample():
    """The issue's clean run: fixed T=4 cost 3.36 x fixed T=1, so a later step costs 2.36/3 of
    T=1; at 1.0178 average timesteps (T / avg T = 3.93 x) the bound is 3.36 / (1 + 0.0178 * 2.36 / 3)."""
    bound = reachable_speedup([1.0], [3.36], 4, 4 / 3.93)
    assert bound == pytest.approx(3.36 / (1 + (4 / 3.93 - 1) * 2.36 / 3))
    assert bound < 3.93 and bound == pytest.approx(3.31, abs=0.01)
    # a stem that costs nothing (t(T) = T t(1)) gives the paper's ideal back
    assert reachable_speedup([1.0, 2.0], [4.0, 8.0], 4, 2.0) == pytest.approx(2.0)
    assert reachable_speedup([1.0], [1.0], 1, 1.0) == 1.0


def test_summarize_hand_computed():
    T = 2
    rows = [  # batch size 4 first: the summary is sorted by batch size
        row(ANN, 4, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
        row("Fixed T=1", 4, [5.0, 5.0, 5.0], [4.0, 4.0, 4.0]),
        row("Fixed T=2", 4, [6.0, 6.0, 6.0], [5.0, 5.0, 5.0]),
        row(ANN, 1, [1.0, 2.0, 1.0], [1.0, 1.0, 1.0]),
        row("Fixed T=1", 1, [3.0, 4.0, 2.0], [2.0, 2.0, 2.0]),
        row("Fixed T=2", 1, [5.0, 8.0, 4.0], [3.0, 4.0, 3.0]),
        row("SEENN-I (confidence)", 1, [3.0, 5.0, 3.0], [2.0, 3.0, 2.0], speedup=1.5, cpu_speedup=1.2, ideal=2.0,
            min_s=2.5),
        row("SEENN-II", 1, [3.0, 4.0, 3.5], [2.0, 2.0, 2.0], speedup=1.8, cpu_speedup=1.6, ideal=1.6, min_s=3.2),
    ]
    small, large = summarize(rows, T)
    assert small["batch_size"] == 1 and large["batch_size"] == 4
    # T=1 / ANN per round: 3/1, 4/2, 2/1 -> median 2; CPU 2/1 each -> 2
    assert small["snn_t1_over_ann"] == pytest.approx(2.0) and small["cpu_snn_t1_over_ann"] == pytest.approx(2.0)
    # later timestep (T=2 - T=1) / (T - 1) over the ANN: 2/1, 4/2, 2/1 -> 2; CPU 1/1, 2/1, 1/1 -> 1
    assert small["snn_later_timestep_over_ann"] == pytest.approx(2.0)
    assert small["cpu_snn_later_timestep_over_ann"] == pytest.approx(1.0)
    # batch 4: 5/1 -> 5, later (6 - 5) / 1 -> 1; CPU 4 and 1
    assert (large["snn_t1_over_ann"], large["snn_later_timestep_over_ann"]) == pytest.approx((5.0, 1.0))
    assert (large["cpu_snn_t1_over_ann"], large["cpu_snn_later_timestep_over_ann"]) == pytest.approx((4.0, 1.0))
    # only SEENN methods: fastest = fastest Fixed T=2 round (4) / the method's fastest; fraction = speedup / ideal
    assert set(small["early_exit"]) == {"SEENN-I (confidence)", "SEENN-II"} and large["early_exit"] == {}
    # reachable bound per round t(T) / [t(1) + (avg T - 1) (t(T) - t(1))]: SEENN-I (avg T 1) 5/3, 2, 2 -> 2;
    # SEENN-II (avg T 1.25) 5/3.5, 8/5, 4/2.5 -> 1.6
    # with only the engine timed, the engine is the best fixed T: engine_* repeat the figures
    # (engine speedup per round: 5/3, 8/5, 4/3 -> 8/5 for SEENN-I; 5/3, 2, 8/7 -> 5/3 for SEENN-II)
    assert small["best_fixed_path"] == "engine" and small["best_fixed_T"] == "Fixed T=2"
    assert (small["best_fixed_t1_ms"], small["best_fixed_tT_ms"]) == pytest.approx((3e3, 5e3))
    assert small["early_exit"]["SEENN-I (confidence)"] == pytest.approx(
        {"speedup": 1.5, "cpu_speedup": 1.2, "fastest_speedup": 4 / 2.5, "ideal": 2.0, "reachable": 2.0,
         "of_reachable": 0.75, "fraction_of_ideal": 0.75, "cpu_fraction_of_ideal": 0.6,
         "engine_speedup": 1.6, "engine_reachable": 2.0, "engine_of_reachable": 0.8})
    assert small["early_exit"]["SEENN-II"] == pytest.approx(
        {"speedup": 1.8, "cpu_speedup": 1.6, "fastest_speedup": 4 / 3.2, "ideal": 1.6, "reachable": 1.6,
         "of_reachable": 1.125, "fraction_of_ideal": 1.125, "cpu_fraction_of_ideal": 1.0,
         "engine_speedup": 5 / 3, "engine_reachable": 1.6, "engine_of_reachable": 5 / 3 / 1.6})
    # fixed T over fixed T=1 per round: 5/3, 2, 2 -> 2; batch 4: 6/5
    assert small["fixed_T_over_T1"] == pytest.approx(2.0) and large["fixed_T_over_T1"] == pytest.approx(1.2)


def test_the_faster_fixed_t_path_is_the_yardstick_and_gives_the_bound():
    """With the multi-step forward timed beside the engine, the faster at T is the best fixed T:
    the bound takes t(1) and t(T) from it; the engine's own bound stays beside it."""
    T = 2
    rows = [row(ANN, 1, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
            row("Fixed T=1", 1, [3.0, 3.0, 3.0], [3.0, 3.0, 3.0]),
            row("Fixed T=2", 1, [5.0, 5.0, 5.0], [5.0, 5.0, 5.0]),
            row("Fixed T=1 (multi-step)", 1, [1.5, 1.5, 1.5], [1.5, 1.5, 1.5]),
            row("Fixed T=2 (multi-step)", 1, [2.0, 2.0, 2.0], [2.0, 2.0, 2.0]),
            # measure() gives speedups over the best fixed T: 2 / 2.5
            row("SEENN-I (confidence)", 1, [2.5, 2.5, 2.5], [2.5, 2.5, 2.5], speedup=0.8, cpu_speedup=0.8, ideal=2.0)]
    (entry,) = summarize(rows, T)
    assert entry["best_fixed_path"] == "multi-step" and entry["best_fixed_T"] == "Fixed T=2 (multi-step)"
    assert entry["snn_t1_over_ann"] == pytest.approx(1.5) and entry["engine_t1_over_ann"] == pytest.approx(3.0)
    assert entry["fixed_T_over_T1"] == pytest.approx(2.0 / 1.5)
    e = entry["early_exit"]["SEENN-I (confidence)"]
    # avg T 1: bound t(T) / t(1) = 2 / 1.5 on the multi-step path, 5 / 3 on the engine's
    assert e["reachable"] == pytest.approx(2 / 1.5) and e["of_reachable"] == pytest.approx(0.8 / (2 / 1.5))
    assert e["engine_speedup"] == pytest.approx(2.0) and e["engine_reachable"] == pytest.approx(5 / 3)
    assert e["fastest_speedup"] == pytest.approx(2.0 / 2.5)
    assert set(entry["early_exit"]) == {"SEENN-I (confidence)"}  # fixed-T paths are not early exit


def test_summarize_at_one_timestep_has_no_later_timestep_cost():
    rows = [row(ANN, 2, [1.0, 2.0], [1.0, 1.0]), row("Fixed T=1", 2, [3.0, 4.0], [2.0, 3.0])]
    (entry,) = summarize(rows, 1)
    # T=1 / ANN: 3/1 = 3 and 4/2 = 2 -> median 2.5; CPU 2 and 3 -> 2.5
    assert entry["snn_t1_over_ann"] == pytest.approx(2.5) and entry["cpu_snn_t1_over_ann"] == pytest.approx(2.5)
    assert "snn_later_timestep_over_ann" not in entry and "cpu_snn_later_timestep_over_ann" not in entry
    assert entry["early_exit"] == {}


CALIBRATION = {"scores": {"confidence": {"alpha": 0.9}},
               "settings": {"scores": ["confidence"], "temperature": 1.0, "accumulate": "sum", "entropy_temperature": False}}


def _guarantee(certified: bool = True) -> dict:
    """A guarantee.json as the guarantee stage writes it (the parts the engine stages read)."""
    ltt = {"certified": certified, "alpha": 0.6 if certified else None}
    return {"scores": {"confidence": {"ltt": ltt}},
            "conformal": {"checkpoints": [1, 2, 4], "q": [0.4, 0.6, 0.7], "max_set_size": 1, "score": "one_minus_p"}}


def test_every_method_runs_what_its_label_says():
    """method_runs: fixed T=t exits every sample at t, SEENN-I (at each rule's alpha) and the
    conformal rule where their rules say, SEENN-II at the policy's u (the SNN's T, not another
    method's), the ANN as plain batches."""
    import torch
    from test_engine import T, posthoc_logits, tiny

    from seenn.methods import engine
    from seenn.methods.catalog import ANN, SEENN2, conformal_label, engine_methods, fixed_label, seenn1_label
    from seenn.methods.latency import method_runs

    model = tiny()
    torch.manual_seed(1)
    x = torch.randn(11, 1, 12, 12) * 2
    u = torch.arange(11) % T + 1
    policy = engine.Policy(decide=lambda xb: u)  # one batch: the whole input
    methods = engine_methods(T, CALIBRATION, with_policy=True, guarantee=_guarantee())
    fixed = [fixed_label(t) for t in range(1, T + 1)]
    assert [m.label for m in methods] == [*fixed, seenn1_label("confidence"), seenn1_label("confidence", "certified"),
                                          conformal_label("one_minus_p"), SEENN2, ANN]
    with torch.no_grad():
        runs = {name: fn() for name, fn in method_runs(model, lambda xb, t: model(xb, t), x, 11, methods, policy).items()}
    for t in range(1, T + 1):
        assert runs[fixed_label(t)][0].exit_t.tolist() == [t] * 11
    z = posthoc_logits(model, x, T)
    for m in (m for m in methods if m.kind == "rule"):
        assert torch.equal(runs[m.label][0].exit_t, m.rule.posthoc(z)), m.label
    by = {m.label: m for m in methods}
    assert [by[seenn1_label("confidence", r)].rule.alpha for r in (None, "certified")] == [0.9, 0.6]
    assert torch.equal(runs[SEENN2][0].exit_t, u)
    assert runs[ANN][0].shape == (1, 11, 5)


def test_seenn1_calibration_picks_the_alpha_the_engine_runs_as_seenn1():
    """seenn1.calibration: ltt runs Learn-then-Test's certified alpha as "SEENN-I", the tolerance
    rule's beside it; with no alpha certified, full T (never another rule); with no usable
    guarantee (the authors' protocol voids it), a clear error; the tolerance rule alone without one."""
    import pytest
    from test_engine import T

    from seenn.methods.catalog import ANN, engine_methods, fixed_label, seenn1_label
    from seenn.methods.exits import FixedT

    by = {m.label: m for m in engine_methods(T, CALIBRATION, False, _guarantee(), "ltt")}
    assert by[seenn1_label("confidence")].rule.alpha == 0.6
    assert by[seenn1_label("confidence", "tolerance")].rule.alpha == 0.9
    by = {m.label: m for m in engine_methods(T, CALIBRATION, False, _guarantee(certified=False), "ltt")}
    assert by[seenn1_label("confidence")].rule == FixedT()
    with pytest.raises(ValueError, match="data.protocol: project"):
        engine_methods(T, CALIBRATION, False, {"void": "... (set data.protocol: project)"}, "ltt")
    with pytest.raises(ValueError, match="seenn1.calibration"):
        engine_methods(T, CALIBRATION, False, _guarantee(), "best")
    labels = [m.label for m in engine_methods(T, CALIBRATION, False, {"void": "authors"})]
    assert labels == [*(fixed_label(t) for t in range(1, T + 1)), seenn1_label("confidence"), ANN]


def _measured(precision: str, batch_sizes=(1, 4), samples=(3, 0)):
    import torch
    from test_engine import T, posthoc_logits, spread_alpha, tiny

    from seenn.methods.catalog import ANN, Method, fixed_label, seenn1_label
    from seenn.methods.exits import FixedT, Seenn1
    from seenn.methods.latency import measure

    model = tiny()
    torch.manual_seed(1)
    x, y = torch.randn(12, 1, 12, 12) * 2, torch.arange(12) % 5
    alpha = spread_alpha(posthoc_logits(model, x, T), "confidence")
    methods = [Method(fixed_label(t), "fixed", t, FixedT()) for t in range(1, T + 1)]
    methods += [Method(seenn1_label("confidence"), "rule", T, Seenn1("confidence", alpha)), Method(ANN, "ann", 1)]
    cfg = {"batch_sizes": list(batch_sizes), "latency_samples": list(samples), "warmup": 1, "repetitions": 2,
           "precision": precision, "sync_every": 1, "compile_step": False, "cuda_graph": False}
    ann = lambda xb, t: model(xb, t)  # noqa: E731 - the timing only
    return measure(model, ann, x, y, T, methods, cfg, None, torch.device("cpu")), T


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_measure_times_both_fixed_t_paths_and_names_the_faster(precision):
    """Both ways of running fixed T are timed at every batch size (the multi-step forward at T = 1
    and T beside the engine's fixed T = 1..T), the faster at T is every row's yardstick, and the
    multi-step rows give the engine's fixed-T accuracy (the same network, the same outputs)."""
    rows, T = _measured(precision)
    by = {(r["method"], r["batch_size"]): r for r in rows}
    for bs, n in ((1, 3), (4, 12)):
        for label in ("Fixed T=1 (multi-step)", f"Fixed T={T} (multi-step)", "Fixed T=1", f"Fixed T={T}"):
            assert by[(label, bs)]["samples"] == n
        best = by[("SEENN-I (confidence)", bs)]["best_fixed_T"]
        assert best in (f"Fixed T={T}", f"Fixed T={T} (multi-step)")
        assert by[(best, bs)]["speedup_vs_fixed_T"] == pytest.approx(1.0)
        if precision == "fp32":
            assert by[(f"Fixed T={T} (multi-step)", bs)]["accuracy"] == by[(f"Fixed T={T}", bs)]["accuracy"]
        assert by[(f"Fixed T={T} (multi-step)", bs)]["avg_timesteps"] == T
    (one, four) = summarize(rows, T)
    assert one["best_fixed_T"] == by[("SEENN-I (confidence)", 1)]["best_fixed_T"]
    e = four["early_exit"]["SEENN-I (confidence)"]
    assert e["of_reachable"] == pytest.approx(e["speedup"] / e["reachable"])


def test_bf16_inference_changes_few_exits_and_predictions():
    """engine.precision bf16 (autocast) against fp32 on the same inputs: the share of samples
    whose exit timestep or prediction differs stays under the bounds stated here. The network is
    untrained and alpha sits at the median score at t = 2, so many samples lie near the threshold:
    13.5 % of these 400 differ in exit on this CPU, none in prediction. Bounds: 25 % and 5 %."""
    import torch
    from test_engine import posthoc_logits, spread_alpha, tiny

    from seenn.common.runtime import inference_precision
    from seenn.methods import engine

    model = tiny()
    torch.manual_seed(1)
    x = torch.randn(400, 1, 12, 12) * 2
    alpha = spread_alpha(posthoc_logits(model, x, 4), "confidence")
    fp32 = engine.run_seenn1(model, x, 4, alpha, "confidence", batch_size=16)
    with inference_precision("bf16", torch.device("cpu")):
        bf16 = engine.run_seenn1(model, x, 4, alpha, "confidence", batch_size=16)
    assert bf16.logits.dtype == torch.float32  # the engine accumulates logits in fp32
    differ = ((fp32.exit_t != bf16.exit_t) | (fp32.prediction != bf16.prediction)).double().mean()
    assert 0 < differ <= 0.25  # > 0: autocast really ran in bf16
    assert (fp32.prediction != bf16.prediction).double().mean() <= 0.05


def test_an_unknown_precision_is_refused_naming_the_key():
    import torch

    from seenn.common.errors import SeennError
    from seenn.common.runtime import inference_precision

    with pytest.raises(SeennError, match="engine.precision"):
        inference_precision("fp16", torch.device("cpu"))


def test_the_precision_context_restores_tf32():
    """engine.precision tf32 holds inside the timed block only: TF32 is as before after it."""
    import torch

    from seenn.common.runtime import inference_precision, set_tf32

    set_tf32(False)
    with inference_precision("tf32", torch.device("cpu")):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
