"""Two clean runs of the tiny DAG in separate directories give byte-identical outputs: a second
Snakemake run against the session's, with the same dvc.lock records (measurements aside)."""

import pytest
import yaml
from conftest import NOT_DETERMINISTIC, make_project, sh, tiny_config

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
