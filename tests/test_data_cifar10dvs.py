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

from seenn.data import cifar10dvs, get_spec, validate_split
from seenn.errors import SeennError

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
    from seenn.data.prepared import prepare
    from seenn.artifacts import open_split

    frames = cifar10dvs._to_frames(dvs_root / "CIFAR10DVS" / "bird" / "cifar10_bird_0.aedat4", 4, 32, mode)
    assert frames.shape == (4, 2, 32, 32) and frames.dtype == torch.float16 and float(frames.float().sum()) > 0
    if mode == "area":
        cfg = {**_cfg(dvs_root), "frames": 4, "frame_size": 32, "frame_resize": mode, "protocol": "project"}
        out = dvs_root.parent / f"prepared_{mode}"
        manifest = prepare({"name": "cifar10dvs", **cfg}, 5, out)
        assert manifest["input_shape"] == [4, 2, 32, 32]
        src = open_split(out / "train.pt")
        assert src.spec.input_shape == (4, 2, 32, 32) and len(src) == 80
