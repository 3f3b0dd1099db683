import pytest
import torch

from seenn.common.errors import SeennError
from seenn.common.io import atomic_path, load_checked, read_json, save_checked, write_json


def test_checked_roundtrip_and_truncation_names_the_file(tmp_path):
    path = tmp_path / "ck.pt"
    save_checked(path, {"w": torch.arange(1000)})
    assert torch.equal(load_checked(path)["w"], torch.arange(1000))
    data = path.read_bytes()
    path.write_bytes(data[:100])
    with pytest.raises(SeennError, match=r"corrupt or truncated .*ck\.pt.*delete it and rerun"):
        load_checked(path)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(SeennError, match="sha256 mismatch"):
        load_checked(path)


def test_missing_checked_file_says_which_stage(tmp_path):
    with pytest.raises(SeennError, match="run the evaluate stage first"):
        load_checked(tmp_path / "x.pt", producer="the evaluate stage")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_json_is_stable_and_corrupt_json_is_named(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SeennError, match="corrupt JSON file .*bad.json"):
        read_json(tmp_path / "bad.json")


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_names_the_file_and_keeps_the_previous_version(tmp_path, monkeypatch, where):
    """ENOSPC while writing the temporary file, or while flushing it: one line naming the file,
    the temporary file gone, the previous version kept."""
    import errno
    import os

    from seenn.common.io import write_text

    target = tmp_path / "table.csv"
    target.write_text("old")
    full = OSError(errno.ENOSPC, "No space left on device")
    if where == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(full))
        call = lambda: write_text(target, "new")  # noqa: E731
    else:
        def call():
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                raise full
    with pytest.raises(SeennError, match=r"no space left on the device while writing .*table\.csv.*previous version is kept") as info:
        call()
    assert "\n" not in str(info.value)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
