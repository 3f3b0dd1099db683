"""CIFAR10-DVS loader on tiny AEDAT4 recordings laid out as tonic extracts them.

No AEDAT4 writer ships with tonic or `aedat` (decoder only), so `write_aedat4` writes the documented
binary format: magic line, size-prefixed flatbuffer IOHeader (no compression, XML stream info),
then packets [stream id u32][size u32][size-prefixed EventPacket flatbuffer, id "EVTS"], where an
Event struct is {t int64, x int16, y int16, on bool} padded to 16 bytes."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from seenn.common.errors import SeennError
from seenn.data import cifar10dvs
from seenn.data.registry import get_spec
from seenn.data.spec import validate_split

DESCRIPTION = (
    '<dv version="2.0"><node name="outInfo"><node name="0">'
    '<attr key="typeIdentifier" type="string">EVTS</attr>'
    '<node name="info"><attr key="sizeX" type="int">128</attr><attr key="sizeY" type="int">128</attr>'
    "</node></node></node></dv>"
)


def _ioheader() -> bytes:
    """Size-prefixed flatbuffer Ioheader{compression=None, file_data_position=-1, description}."""
    text = DESCRIPTION.encode()
    vtable = struct.pack("<5H", 10, 8, 0, 0, 4)  # only field 2 (description) stored, at table+4
    body = struct.pack("<I", 20) + b"IOHE" + vtable + b"\0\0"  # root table at 20
    body += struct.pack("<iI", 20 - 8, 28 - 24)  # table: soffset to vtable at 8, string at 28
    body += struct.pack("<I", len(text)) + text + b"\0"
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<I", len(body)) + body


def _event_packet(t: np.ndarray, x: np.ndarray, y: np.ndarray, on: np.ndarray) -> bytes:
    """Stream-0 packet holding a size-prefixed flatbuffer EventPacket{elements: [Event]}."""
    ev = np.zeros(len(t), dtype=np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                                          "offsets": [0, 8, 10, 12], "itemsize": 16}))
    ev["t"], ev["x"], ev["y"], ev["on"] = t, x, y, on
    # offsets from the buffer start (size prefix included): root@4 -> table@20, vtable@12, vector@28
    buf = struct.pack("<I", 20 - 4) + b"EVTS" + struct.pack("<3H", 6, 8, 4) + b"\0\0"
    buf += struct.pack("<iI", 20 - 12, 28 - 24) + struct.pack("<I", len(ev)) + ev.tobytes()
    payload = struct.pack("<I", len(buf)) + buf
    return struct.pack("<II", 0, len(payload)) + payload


def write_aedat4(path: Path, rng: np.random.Generator, n_events: int, label: int) -> None:
    """A recording whose on-events cluster in a label-dependent row band (so classes differ)."""
    t = np.sort(rng.integers(0, 1_000_000, n_events)).astype(np.int64)
    x = rng.integers(0, 128, n_events)
    y = (label * 12 + rng.integers(0, 12, n_events)) % 128
    on = rng.integers(0, 2, n_events).astype(bool)
    half = n_events // 2
    packets = _event_packet(t[:half], x[:half], y[:half], on[:half])
    packets += _event_packet(t[half:], x[half:], y[half:], on[half:])
    path.write_bytes(b"#!AER-DAT4.0\r\n" + _ioheader() + packets)


def make_cifar10dvs(root: Path, per_class: int = 10, classes=cifar10dvs.CLASSES) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "CIFAR10DVS"
    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            write_aedat4(folder / c / f"cifar10_{c}_{i}.aedat4", rng, 300 + 7 * i, cifar10dvs.CLASSES.index(c))
    return folder


def pin_split_list(monkeypatch, where: Path, per_class: int = 10) -> Path:
    """Point the loader at a split list for a fixture tree of `per_class` recordings per class."""
    names = [f"{c}/cifar10_{c}_{i}.aedat4" for c in cifar10dvs.CLASSES for i in range(per_class)]
    path = where / f"split_list_{per_class}.txt"
    path.write_text(cifar10dvs.split_list_text(names))
    monkeypatch.setattr(cifar10dvs, "SPLIT_LIST", path)
    monkeypatch.setattr(cifar10dvs, "SPLIT_LIST_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    return path


@pytest.fixture(autouse=True)
def fixture_list_and_cache(monkeypatch, tmp_path):
    """Every test: the split list of the standard fixture tree, and a frame cache of its own."""
    pin_split_list(monkeypatch, tmp_path)
    monkeypatch.setattr(cifar10dvs, "CACHE_ROOT", tmp_path / "cache")


def _cfg(root: Path, val_size: int = 10) -> dict:
    return {"root": str(root), "val_size": val_size, "train_size": 1, "test_size": 1}


@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dvs")
    make_cifar10dvs(root)
    return root


def test_registry_returns_this_spec():
    spec = get_spec("cifar10dvs")
    assert spec is cifar10dvs.SPEC
    assert spec.num_classes == 10 and spec.input_shape == (10, 2, 48, 48) and spec.event


def test_fixture_reads_back_through_tonic(dvs_root):
    import tonic.io

    ev = tonic.io.read_aedat4(str(dvs_root / "CIFAR10DVS" / "airplane" / "cifar10_airplane_3.aedat4"))
    assert ev.shape == (321,) and ev.dtype.names == ("t", "x", "y", "on")
    assert (np.diff(ev["t"].astype(np.int64)) >= 0).all() and ev["y"].max() < 12


def test_frames_keep_every_binned_event(dvs_root):
    frames = cifar10dvs._to_frames(dvs_root / "CIFAR10DVS" / "bird" / "cifar10_bird_0.aedat4")  # 300 events
    assert frames.shape == (10, 2, 48, 48) and frames.dtype == torch.float16
    # area resize averages 3-4 px windows (128/48 overlaps them): scaled back by (128/48)^2 the
    # sum is close to the 30 events of each bin, and the label's row band (rows 24..35) is kept
    per_bin = frames.float().sum(dim=(1, 2, 3)) * (128 / 48) ** 2
    assert ((per_bin > 24) & (per_bin < 36)).all()
    rows = frames.float().sum(dim=(0, 1, 3)).nonzero().flatten()
    assert rows.min() >= 24 * 48 // 128 and rows.max() <= 36 * 48 // 128 + 1


def test_loads_valid_stratified_deterministic_splits(dvs_root):
    spec = cifar10dvs.SPEC
    out = spec.load(_cfg(dvs_root, 10), 5)
    sizes = {s: out[s][0].shape[0] for s in out}
    assert sizes == {"train": 80, "val": 10, "test": 10}
    for split, (x, y) in out.items():
        validate_split(spec, split, x, y, "fixture")
        assert (torch.bincount(y, minlength=10) == sizes[split] // 10).all()  # stratified per class
    again = spec.load(_cfg(dvs_root, 10), 5)
    other = spec.load(_cfg(dvs_root, 10), 6)
    for split in out:
        assert torch.equal(out[split][0], again[split][0]) and torch.equal(out[split][1], again[split][1])
    assert not torch.equal(out["train"][1], other["train"][1])  # other seed -> other order
    # the test set is fixed across run seeds (same recordings), val moves with the seed
    def fingerprint(x: torch.Tensor) -> torch.Tensor:  # order-free summary of a split's samples
        return torch.sort((x.float() * torch.arange(x[0].numel()).view(x[0].shape)).flatten(1).sum(1)).values

    assert torch.equal(fingerprint(out["test"][0]), fingerprint(other["test"][0]))
    assert not torch.equal(fingerprint(out["val"][0]), fingerprint(other["val"][0]))


def test_split_file_list_partitions_the_recordings(dvs_root):
    files = cifar10dvs.split_file_list(_cfg(dvs_root, 10), 5)
    all_names = sorted(p.relative_to(dvs_root / "CIFAR10DVS").as_posix() for p in dvs_root.rglob("*.aedat4"))
    assert sorted(files["train"] + files["val"] + files["test"]) == all_names
    for split, names in files.items():
        assert names == sorted(names)
        assert len({n.split("/")[0] for n in names}) == 10, split  # every class in every split
    assert files["test"] == cifar10dvs.split_file_list(_cfg(dvs_root, 10), 6)["test"]
    assert files["val"] != cifar10dvs.split_file_list(_cfg(dvs_root, 10), 6)["val"]


def test_labels_match_class_folders(dvs_root):
    files = cifar10dvs.split_file_list(_cfg(dvs_root, 10), 5)
    _, names, y = cifar10dvs._discover(_cfg(dvs_root))
    assert [cifar10dvs.CLASSES[i] for i in y.tolist()] == [n.split("/")[0] for n in names]
    assert len(files["test"]) == 10


def test_missing_directory_names_it(tmp_path):
    with pytest.raises(SeennError) as e:
        cifar10dvs.SPEC.load(_cfg(tmp_path), 0)
    assert str(tmp_path / "CIFAR10DVS") in str(e.value) and "tonic.datasets.CIFAR10DVS" in str(e.value)


def test_empty_directory_names_it(tmp_path):
    (tmp_path / "CIFAR10DVS" / "airplane").mkdir(parents=True)
    with pytest.raises(SeennError) as e:
        cifar10dvs.split_file_list(_cfg(tmp_path), 0)
    assert str(tmp_path / "CIFAR10DVS") in str(e.value) and "no .aedat4" in str(e.value)


def test_missing_classes_name_directory_and_classes(tmp_path):
    make_cifar10dvs(tmp_path, per_class=2, classes=cifar10dvs.CLASSES[:8])
    with pytest.raises(SeennError) as e:
        cifar10dvs.SPEC.load(_cfg(tmp_path, 2), 0)
    msg = str(e.value)
    assert str(tmp_path / "CIFAR10DVS") in msg and "ship" in msg and "truck" in msg


def test_corrupt_recording_names_the_file(tmp_path, monkeypatch):
    pin_split_list(monkeypatch, tmp_path, per_class=2)
    folder = make_cifar10dvs(tmp_path, per_class=2)
    bad = folder / "dog" / "cifar10_dog_1.aedat4"
    bad.write_bytes(b"not an aedat4 file")
    with pytest.raises(SeennError) as e:
        cifar10dvs.SPEC.load(_cfg(tmp_path, 2), 0)
    assert str(bad) in str(e.value)


def test_the_committed_split_list_is_pinned_and_holds_a_9_to_1_split_per_class(monkeypatch):
    monkeypatch.undo()  # the real list and its pinned hash
    digest, listed = cifar10dvs.read_split_list()
    assert digest == cifar10dvs.SPLIT_LIST_SHA256 and len(listed) == 10_000
    for c in cifar10dvs.CLASSES:
        splits = [s for n, s in listed.items() if n.startswith(c + "/")]
        assert len(splits) == 1000 and splits.count("test") == 100


def test_a_missing_or_edited_split_list_or_unlisted_files_stop_the_data_stage(dvs_root, tmp_path, monkeypatch):
    listed = pin_split_list(monkeypatch, tmp_path)
    listed.write_text(listed.read_text().replace(",test\n", ",train\n", 1))
    with pytest.raises(SeennError, match=f"split list {listed} was edited"):
        cifar10dvs.SPEC.load(_cfg(dvs_root), 0)
    monkeypatch.setattr(cifar10dvs, "SPLIT_LIST", tmp_path / "gone.txt")
    with pytest.raises(SeennError, match="split list .*gone.txt is missing: restore it from git"):
        cifar10dvs.SPEC.load(_cfg(dvs_root), 0)
    pin_split_list(monkeypatch, tmp_path, per_class=11)  # lists one recording per class more than the tree holds
    with pytest.raises(SeennError, match="do not match the split list .*: 10 listed recordings are missing") as e:
        cifar10dvs.SPEC.load(_cfg(dvs_root), 0)
    assert "\n" not in str(e.value)
    pin_split_list(monkeypatch, tmp_path, per_class=9)
    with pytest.raises(SeennError, match="10 recordings are not in the list"):
        cifar10dvs.SPEC.load(_cfg(dvs_root), 0)


def test_decoded_frames_are_cached_and_a_second_run_decodes_nothing(dvs_root, tmp_path, monkeypatch):
    first = cifar10dvs.SPEC.load(_cfg(dvs_root), 5)
    assert len(list((tmp_path / "cache").glob("*/frames.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(cifar10dvs, "_to_frames", no_decoding)
    again = cifar10dvs.SPEC.load(_cfg(dvs_root), 5)
    assert all(torch.equal(first[s][0], again[s][0]) for s in first)
    with pytest.raises(AssertionError, match="decoded although cached"):  # another frame count: another key
        cifar10dvs.SPEC.load({**_cfg(dvs_root), "frames": 4, "frame_size": 48, "frame_resize": "area"}, 5)


def test_the_cache_key_changes_with_every_parameter(monkeypatch):
    base = cifar10dvs.cache_key(10, 48, "area", "a" * 64)
    others = {cifar10dvs.cache_key(4, 48, "area", "a" * 64), cifar10dvs.cache_key(10, 32, "area", "a" * 64),
              cifar10dvs.cache_key(10, 48, "bilinear", "a" * 64), cifar10dvs.cache_key(10, 48, "area", "b" * 64)}
    import tonic

    monkeypatch.setattr(tonic, "__version__", "0.0.1")
    others.add(cifar10dvs.cache_key(10, 48, "area", "a" * 64))
    assert base not in others and len(others) == 5


@pytest.mark.parametrize("mode", ["area", "bilinear", "nearest"])
def test_frame_count_size_and_resize_are_configurable(dvs_root, mode):
    from seenn.data.files import open_split
    from seenn.data.prepared import prepare

    frames = cifar10dvs._to_frames(dvs_root / "CIFAR10DVS" / "bird" / "cifar10_bird_0.aedat4", 4, 32, mode)
    assert frames.shape == (4, 2, 32, 32) and frames.dtype == torch.float16 and float(frames.float().sum()) > 0
    if mode == "area":
        cfg = {**_cfg(dvs_root), "frames": 4, "frame_size": 32, "frame_resize": mode, "protocol": "project"}
        out = dvs_root.parent / f"prepared_{mode}"
        manifest = prepare({"name": "cifar10dvs", **cfg}, 5, out)
        assert manifest["input_shape"] == [4, 2, 32, 32]
        src = open_split(out / "train.pt")
        assert src.spec.input_shape == (4, 2, 32, 32) and len(src) == 80


# --- a user's own split list (data.split_list, data.split_list_sha256) -------------------------

def _own(root: Path, listed: Path, val_size: int = 10, **keys) -> dict:
    """A data config naming the user's list `listed`, pinned by its sha256 unless `keys` say otherwise."""
    return {**_cfg(root, val_size), "name": "cifar10dvs", "split_list": str(listed),
            "split_list_sha256": hashlib.sha256(listed.read_bytes()).hexdigest(), **keys}


def _names(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "CIFAR10DVS").as_posix() for p in root.rglob("*.aedat4"))


def test_the_cli_writes_the_rules_list_and_prints_its_sha256(dvs_root, tmp_path, capsys):
    from seenn.cli import main

    out = tmp_path / "lists" / "mine.txt"
    assert main(["data", "split-list", str(dvs_root), "--output", str(out)]) == 0
    text = out.read_text()
    assert text == cifar10dvs.split_list_text(_names(dvs_root))
    printed = capsys.readouterr().out
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"sha256 {digest}\n" in printed and "100 recordings" in printed and "(90 train, 10 test)" in printed
    assert f"data.split_list: {out} and data.split_list_sha256: {digest}" in printed
    # the committed list's rule: 10 % of each class to test
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert all(sum(1 for c, _, s in rows if c == k and s == "test") == 1 for k in cifar10dvs.CLASSES)


def test_the_cli_refuses_the_committed_list_and_a_tree_without_recordings(dvs_root, tmp_path, monkeypatch, capsys):
    from seenn.cli import main

    monkeypatch.undo()
    before = cifar10dvs.SPLIT_LIST.read_bytes()
    assert main(["data", "split-list", str(dvs_root), "--output", str(cifar10dvs.SPLIT_LIST)]) == 2
    assert "is the committed split list" in capsys.readouterr().err
    assert cifar10dvs.SPLIT_LIST.read_bytes() == before
    assert main(["data", "split-list", str(tmp_path), "--output", str(tmp_path / "x.txt")]) == 2
    assert f"expected directory {tmp_path / 'CIFAR10DVS'}" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()


def test_a_users_list_is_used_instead_of_the_committed_one(dvs_root, tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10dvs, "SPLIT_LIST", tmp_path / "no_committed_list.txt")  # reading it would fail
    listed = tmp_path / "mine.txt"
    digest, counts = cifar10dvs.write_split_list(dvs_root, listed)
    assert counts == {"train": 90, "test": 10} and digest == hashlib.sha256(listed.read_bytes()).hexdigest()
    # move one recording of each class between train and test: the splits must follow the list
    text = listed.read_text()
    for c in cifar10dvs.CLASSES:
        test_line = next(ln for ln in text.splitlines() if ln.startswith(f"{c},") and ln.endswith(",test"))
        train_line = next(ln for ln in text.splitlines() if ln.startswith(f"{c},") and ln.endswith(",train"))
        text = text.replace(test_line, test_line[:-4] + "train").replace(train_line, train_line[:-5] + "test")
    listed.write_text(text)
    wanted = sorted(f"{c}/{f}" for c, f, s in (ln.split(",") for ln in text.splitlines()[1:]) if s == "test")
    files = cifar10dvs.split_file_list(_own(dvs_root, listed), 5)
    assert files["test"] == wanted and not set(wanted) & set(files["train"] + files["val"])
    out = cifar10dvs.SPEC.load(_own(dvs_root, listed), 5)
    assert {s: out[s][0].shape[0] for s in out} == {"train": 80, "val": 10, "test": 10}
    # the frame cache is keyed by the list's sha256
    key = cifar10dvs.cache_key(10, 48, "area", hashlib.sha256(listed.read_bytes()).hexdigest())
    assert [p.parent.name for p in (tmp_path / "cache").glob("*/frames.pt")] == [key]


def test_each_bad_user_list_names_its_key(dvs_root, tmp_path):
    listed = tmp_path / "mine.txt"
    cifar10dvs.write_split_list(dvs_root, listed)
    good = _own(dvs_root, listed)
    cases = [
        ({"split_list": str(tmp_path / "gone.txt")}, rf"'data.split_list': split list {tmp_path / 'gone.txt'} not found"),
        ({"split_list_sha256": "0" * 64}, r"'data.split_list_sha256' \(000000000000...\) does not match the sha256 "
                                         rf"of 'data.split_list' {listed} \({good['split_list_sha256']}\)"),
        ({"split_list_sha256": None}, r"'data.split_list_sha256' is required when 'data.split_list' is set"),
        ({"split_list": None, "split_list_sha256": "0" * 64}, r"'data.split_list_sha256' must be null"),
        ({"split_list": ""}, None),  # empty: the committed list (here the fixture's)
    ]
    for change, message in cases:
        if message is None:
            cifar10dvs.split_file_list({**good, **change, "split_list_sha256": None}, 0)
            continue
        with pytest.raises(SeennError, match=message):
            cifar10dvs.split_file_list({**good, **change}, 0)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("class,file,split", "name,file,split"), "the first line must be the header 'class,file,split'"),
    (lambda t: t.replace(",test\n", ",val\n", 1), r"line \d+: expected 'class,<name>.aedat4,train\|test', got '.*,val'"),
    (lambda t: t + t.splitlines()[1] + "\n", r"line 102: airplane/cifar10_airplane_0.aedat4 is listed twice"),
])
def test_a_malformed_user_list_names_the_key_and_line(dvs_root, tmp_path, edit, message):
    listed = tmp_path / "mine.txt"
    cifar10dvs.write_split_list(dvs_root, listed)
    listed.write_text(edit(listed.read_text()))
    with pytest.raises(SeennError, match=rf"'data.split_list' {listed}.*{message}"):
        cifar10dvs.split_file_list(_own(dvs_root, listed), 0)


def test_a_user_list_not_matching_the_recordings_names_the_first_differing_file(dvs_root, tmp_path):
    listed = tmp_path / "mine.txt"
    cifar10dvs.write_split_list(dvs_root, listed)
    text = listed.read_text()
    listed.write_text(text.replace("bird,cifar10_bird_3.aedat4,", "bird,cifar10_bird_30.aedat4,")
                      .replace("dog,cifar10_dog_1.aedat4,", "dog,cifar10_dog_X.aedat4,"))
    folder = dvs_root / "CIFAR10DVS"
    with pytest.raises(SeennError) as e:
        cifar10dvs.split_file_list(_own(dvs_root, listed), 0)
    assert str(e.value) == (
        f"dataset 'cifar10dvs': the files in {folder} do not match 'data.split_list' {listed}: 2 listed recordings "
        f"are missing and 2 recordings are not in the list; first differing file {folder / 'bird/cifar10_bird_3.aedat4'} "
        f"(on disk but not listed)")
    listed.write_text(text.replace("airplane,cifar10_airplane_0.aedat4,", "airplane,a.aedat4,"))  # sorts first
    with pytest.raises(SeennError, match=r"first differing file .*/airplane/a.aedat4 \(listed but missing\)"):
        cifar10dvs.split_file_list(_own(dvs_root, listed), 0)
