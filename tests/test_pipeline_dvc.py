"""Two clean runs of the tiny DAG, one through each front door, give byte-identical outputs: a
fresh project reproduced by `dvc repro` against the session's, which Snakemake ran (so this is
the determinism check and DVC's whole run in one). After it neither tool has anything to do."""

import pytest
import yaml

from conftest import NOT_DETERMINISTIC, dvc_changed, make_project, planned_jobs, sh, tiny_config

pytestmark = pytest.mark.slow
MEASURED = {"latency", "teas_latency", "report_measurements"}  # stages whose outputs are measurements


def output_bytes(cwd) -> dict[str, bytes]:
    """Every result, prepared split and report of a project, measurements and bookkeeping aside."""
    files = {}
    for base in ("results", "data/prepared", "reports"):
        for p in sorted((cwd / base).rglob("*")):
            rel = str(p.relative_to(cwd))
            if p.is_file() and not rel.startswith(NOT_DETERMINISTIC):
                files[rel] = p.read_bytes()
    return files


def test_clean_dvc_repro_gives_the_bytes_of_a_clean_snakemake_run(tmp_path, request):
    other = make_project(tmp_path / "b", tiny_config())
    sh(other, "dvc", "repro")
    assert dvc_changed(other) == set()
    assert planned_jobs(other) == set()  # stages DVC ran in order are finished for Snakemake too
    # the session's Snakemake run, asked for only now: the two clean runs go side by side
    snakemake_run = request.getfixturevalue("tiny_project")
    a, b = output_bytes(snakemake_run), output_bytes(other)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    lock_a = yaml.safe_load((snakemake_run / "dvc.lock").read_text())["stages"]
    lock_b = yaml.safe_load((other / "dvc.lock").read_text())["stages"]
    assert {k: v for k, v in lock_a.items() if k not in MEASURED} == {k: v for k, v in lock_b.items() if k not in MEASURED}
