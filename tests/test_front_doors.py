"""The two front doors never disagree silently (issue 35, item 5): a table-shaping key edited by
hand in params.yaml without `seenn dvc-yaml` stops both tools with one line naming the command
that regenerates dvc.yaml, before any stage computes anything."""

import pytest
import yaml
from conftest import sh

pytestmark = pytest.mark.slow


def _edited(cfg: dict, edit: str) -> dict:
    if edit == "seeds":
        cfg["seeds"] = [cfg["seed"] + 1, cfg["seed"] + 2]
    else:
        cfg["conversion"]["enabled"] = False
    return cfg


@pytest.mark.parametrize("edit", ["seeds", "conversion.enabled"])
def test_a_hand_edited_table_key_stops_dvc_and_snakemake(project, edit):
    params = project / "params.yaml"
    original = params.read_text()
    before = {p: p.stat().st_mtime_ns for p in (project / "results").rglob("*") if p.is_file()}
    params.write_text(yaml.safe_dump(_edited(yaml.safe_load(original), edit), sort_keys=False))
    try:
        status = sh(project, "dvc", "status").stdout
        assert "stage_table" in status  # dvc status names the guard: no longer silent
        r = sh(project, "dvc", "repro", check=False)
        assert r.returncode != 0
        out = r.stdout + r.stderr  # the guard's line, or that of a stage refusing before it computes
        assert ("dvc.yaml is out of date" in out or "dvc.yaml does not match the stage table" in out), out[-2000:]
        assert "seenn dvc-yaml" in out
        r = sh(project, "snakemake", "--cores", "1", check=False)
        assert r.returncode != 0
        assert "dvc.yaml does not match the stage table of params.yaml" in r.stdout + r.stderr
        assert "run `seenn dvc-yaml`" in r.stdout + r.stderr
        after = {p: p.stat().st_mtime_ns for p in (project / "results").rglob("*") if p.is_file() and p in before}
        changed = [str(p) for p, t in after.items() if t != before[p] and "/params/" not in str(p)]
        assert not changed, changed[:5]
    finally:
        params.write_text(original)
    assert sh(project, "seenn", "dvc-yaml", "--check").returncode == 0
