"""The README's results blocks are generated (`seenn readme-results`): every table they were built
from is the one the committed dvc.lock records, and their text is what was generated."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seenn.cli import lock_outs
from seenn.report import readme

ROOT = Path(__file__).resolve().parents[1]


def blocks() -> dict[str, dict]:
    return readme.parse((ROOT / "README.md").read_text())


def test_both_blocks_are_there_and_were_built_from_tables():
    found = blocks()
    assert set(found) == {"seenn", "teas"}
    for name, block in found.items():
        assert block["tables"], f"the {name} block records no table: run `seenn readme-results` on the default run"
        assert all(path.startswith("results/tables/") for path in block["tables"])


@pytest.mark.parametrize("name", ["seenn", "teas"])
def test_each_table_a_block_read_is_the_one_dvc_lock_records(name):
    outs = lock_outs(ROOT / "dvc.lock")
    for path, md5 in blocks()[name]["tables"].items():
        assert outs.get(path) == md5, (f"README block '{name}' was built from {path} with md5 {md5}, but dvc.lock "
                                       f"records {outs.get(path)}: regenerate it with `seenn readme-results`")


@pytest.mark.parametrize("name", ["seenn", "teas"])
def test_no_block_was_edited_by_hand(name):
    block = blocks()[name]
    assert readme.md5_text(block["body"]) == block["md5"], f"README block '{name}' differs from what was generated"


def test_a_block_names_the_machine_of_its_run():
    assert " cores, device " in blocks()["seenn"]["body"]


def test_render_parse_round_trip_and_a_hand_edit_is_caught():
    block = readme.render("seenn", "| a | 1 |\n- a bullet: 97.1 %\n", {"results/tables/headline.csv": "0" * 32})
    text = f"# x\n\n{block}\n\nafter\n"
    got = readme.parse(text)["seenn"]
    assert got["tables"] == {"results/tables/headline.csv": "0" * 32}
    assert readme.md5_text(got["body"]) == got["md5"]
    edited = readme.parse(text.replace("97.1 %", "97.3 %"))["seenn"]
    assert readme.md5_text(edited["body"]) != edited["md5"]
    new = readme.render("seenn", "fresh\n", {})
    assert readme.replace(text, {"seenn": new}) == f"# x\n\n{new}\n\nafter\n"
    with pytest.raises(KeyError, match="no readme-results block named teas"):
        readme.replace(text, {"teas": new})


def test_the_seenn_block_is_built_from_the_run_tables(tmp_path):
    """A small synthetic run: the block reads the headline and accuracy-per-T tables (and says which)."""
    tables = tmp_path / "results/tables"
    tables.mkdir(parents=True)
    head = pd.DataFrame([
        {"snn_key": "direct", "key": "fixed", "model": "Direct-trained SNN", "method": "fixed T=4", "max_T": 4,
         "accuracy": 97.0, "avg_timesteps": 4.0, "aet": 1.1, "empirical_aet": 1.089, "energy_uJ": None},
        {"snn_key": "direct", "key": "seenn1-confidence", "model": "Direct-trained SNN", "method": "SEENN-I (confidence)",
         "max_T": 4, "accuracy": 96.95, "avg_timesteps": 1.122, "aet": 1.1, "empirical_aet": 1.089, "energy_uJ": 1.69}])
    head.to_csv(tables / "headline.csv", index=False)
    pd.DataFrame({"model": ["Direct-trained SNN"] * 4, "T": [1, 2, 3, 4], "test_accuracy": [96.4, 96.8, 96.9, 97.0],
                  "val_accuracy": [96.0] * 4}).to_csv(tables / "accuracy_per_t.csv", index=False)
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/manifest.json").write_text('{"splits": {"test": {"n": 1000}}}')
    out = readme.build(tmp_path, 1.0, where="a test machine (2 cores, device cpu)")
    assert set(out) == {"seenn"}
    got = readme.parse(out["seenn"])["seenn"]
    assert set(got["tables"]) == {"results/tables/headline.csv", "results/tables/accuracy_per_t.csv"}
    assert got["tables"]["results/tables/headline.csv"] == readme.md5_file(tables / "headline.csv")
    body = got["body"]
    assert "| Direct-trained SNN (T=4) | Fixed T=1 | 96.4 % | 1 | |" in body
    assert "| | SEENN-I (confidence) | 97.0 % | 1.122 | 1.69 uJ |" in body
    assert "AET / empirical AET (paper Eq. 4 / Eq. 13): 1.100 / 1.089 (Direct-trained SNN)" in body
    assert "a test machine (2 cores, device cpu)" in body and "1,000 samples" in body
