"""Two clean runs of the tiny DAG in separate directories give byte-identical outputs (a second
Snakemake run against the session's), and DVC's front door runs each TEAS stage function, forced,
to exactly the bytes Snakemake wrote."""

import pytest
import yaml

from conftest import NOT_DETERMINISTIC, dvc_changed, make_project, sh, tiny_config
from pipeline_stages import TEAS_STAGES, probe_stages

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


def test_two_clean_runs_are_byte_identical(tmp_path, request):
    other = make_project(tmp_path / "b", tiny_config())
    sh(other, "snakemake", "--cores", "2")
    # the session's run, asked for only now: under two workers the two clean runs go side by side
    first = request.getfixturevalue("tiny_project")
    a, b = output_bytes(first), output_bytes(other)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    lock_a = yaml.safe_load((first / "dvc.lock").read_text())["stages"]
    lock_b = yaml.safe_load((other / "dvc.lock").read_text())["stages"]
    assert {k: v for k, v in lock_a.items() if k not in MEASURED} == {k: v for k, v in lock_b.items() if k not in MEASURED}


def test_teas_stages_run_under_dvc_repro_to_the_bytes_snakemake_wrote(project):
    """TEAS through DVC's front door: forced, `dvc repro` runs each TEAS stage function (the measured
    latency aside; the first stage of each, as the module probe, and the converted SNN's evaluation,
    which loads another model kind) and rewrites exactly the bytes Snakemake wrote, and DVC then
    has nothing to do (in this module's own copy of the project: Snakemake, which goes by
    modification times, would rerun what reads them)."""
    names = sorted({st.name for st in probe_stages() if st.name in TEAS_STAGES - {"teas_latency"}}
                   | {"teas_evaluate_converted"})
    assert len(names) == 5, names
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    files = [path for n in names for out in stages[n]["outs"] for path in out]
    before = {p: (project / p).read_bytes() for p in files}
    out = sh(project, "dvc", "repro", "--force", "--single-item", *names).stdout
    assert all(f"Running stage '{n}'" in out for n in names), out
    assert {p: (project / p).read_bytes() for p in files} == before
    assert dvc_changed(project) == set()
