"""Stage names of the tiny project's table, grouped as the tests of the tiny DAG
(tests/test_pipeline_reruns.py, tests/test_pipeline_code.py) expect them to rerun together."""

REPORT_STAGES = {"tables", "figures", "report"}
REPORTS = REPORT_STAGES | {"report_measurements"}
# TEAS's stages downstream of each SNN (the MNIST row reads only the prepared splits)
TEAS_DIRECT = {"teas_allocate_direct", "teas_retrain_direct", "teas_retrain_direct_noreg", "teas_evaluate_direct",
               "teas_latency"}
TEAS_FINETUNED = {"teas_allocate_finetuned", "teas_evaluate_finetuned"}
TEAS_CONVERTED = {"teas_allocate_converted", "teas_evaluate_converted"}
TEAS_MNIST = {"teas_train_mnist", "teas_retrain_mnist_fixed"} | {f"teas_{step}_mnist_{rule}" for step in
                                                                 ("allocate", "retrain", "evaluate")
                                                                 for rule in ("full", "scale")}
TEAS_STAGES = TEAS_DIRECT | TEAS_FINETUNED | TEAS_CONVERTED | TEAS_MNIST
CONVERTED_POLICY = {f"seenn2_{kind}_converted_{rule}" for kind in ("train", "evaluate")
                    for rule in ("paper", "pow2", "linear", "pow2_linear")} | {"seenn2_select_converted"}
POLICY_STAGES = {"seenn2_train", "seenn2_evaluate", "seenn2_compare"} | CONVERTED_POLICY


def probe_stages():
    """One stage per stage function, plus the converted SNN's evaluation (it loads another model kind)."""
    from seenn.pipeline.table import STAGES

    seen, out = set(), []
    for st in STAGES:
        if st.func not in seen or st.name == "evaluate_converted":
            seen.add(st.func)
            out.append(st)
    return out
