"""CIFAR10-DVS: 10,000 AEDAT4 event recordings (128x128, 2 polarities) -> [10, 2, 48, 48] frames.

Layout is tonic's (`tonic.datasets.CIFAR10DVS(save_to=root)` extracts to `<root>/CIFAR10DVS/`):
one folder per class (airplane/ ... truck/) holding `*.aedat4` files. We walk that layout ourselves
and read each file with `tonic.io.read_aedat4` (needs the `aedat` package), because tonic's dataset
class re-downloads unless the 1000+ files *and* the original zip are present.

Each recording becomes T=10 frames with equal event counts (tonic `ToFrame(n_event_bins=10)`),
resized 128 -> 48 with area interpolation: each output pixel averages its input footprint, so
every event contributes (bilinear without antialiasing would skip pixels of sparse frames).
Stored as float16 event counts.

No official split: test = 10 % of each class, drawn once with the fixed TEST_SPLIT_SEED so the
test set is the same for every run seed; val (`val_size`) is carved, stratified with the run seed,
from the remaining 90 %. `train_size` / `test_size` are ignored. `split_file_list` gives the file
names of each split for the data stage to publish."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import SeennError
from . import DatasetSpec, stratified_split

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SENSOR_SIZE = (128, 128, 2)  # (W, H, P), as tonic.datasets.CIFAR10DVS.sensor_size
TIMESTEPS = 10
SIZE = 48
TEST_FRACTION = 0.1
TEST_SPLIT_SEED = 0  # fixes the test split across run seeds
FOLDER = "CIFAR10DVS"


def _hint(root: Path, folder: Path) -> str:
    return (
        f"Put the class folders ({', '.join(CLASSES)}) with their .aedat4 recordings in {folder}. "
        f"On a machine with internet: python -c \"import tonic; tonic.datasets.CIFAR10DVS(save_to='{root}')\" "
        f"(downloads and extracts CIFAR10DVS.zip from figshare) and copy {folder} here."
    )


def _discover(data_cfg: dict) -> tuple[Path, list[str], torch.Tensor]:
    """Sorted recording paths (relative, 'class/name.aedat4') and their labels; fails if incomplete."""
    root = Path(data_cfg["root"])
    folder = root / FOLDER
    if not folder.is_dir():
        raise SeennError(f"dataset 'cifar10dvs' not found: expected directory {folder}. {_hint(root, folder)}")
    names = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.aedat4")
        if p.is_file() and p.parent.name in CLASSES and not p.name.startswith("._")
        and "__MACOSX" not in p.parts
    )
    if not names:
        raise SeennError(f"dataset 'cifar10dvs': no .aedat4 recordings in class folders under {folder}. {_hint(root, folder)}")
    labels = [CLASSES.index(Path(n).parent.name) for n in names]
    missing = [c for i, c in enumerate(CLASSES) if i not in set(labels)]
    if missing:
        raise SeennError(
            f"dataset 'cifar10dvs': directory {folder} is incomplete, no recordings for classes "
            f"{', '.join(missing)}. {_hint(root, folder)}"
        )
    return folder, names, torch.tensor(labels, dtype=torch.int64)


def _split_indices(y: torch.Tensor, val_size: int, seed: int) -> dict[str, torch.Tensor]:
    n = y.shape[0]
    n_test = round(n * TEST_FRACTION)
    outer = stratified_split(y, {"test": n_test, "rest": n - n_test}, TEST_SPLIT_SEED)
    rest = outer["rest"]
    if not 0 < val_size < rest.numel():
        raise SeennError(f"data.val_size must lie in [1, {rest.numel() - 1}] for cifar10dvs, got {val_size}")
    inner = stratified_split(y[rest], {"train": rest.numel() - val_size, "val": val_size}, seed)
    return {"train": rest[inner["train"]], "val": rest[inner["val"]], "test": outer["test"]}


def split_file_list(data_cfg: dict, seed: int) -> dict[str, list[str]]:
    """Sorted recording names ('class/file.aedat4') of each split, for publishing with a hash."""
    _, names, y = _discover(data_cfg)
    idx = _split_indices(y, int(data_cfg["val_size"]), seed)
    return {split: sorted(names[i] for i in idx[split].tolist()) for split in ("train", "val", "test")}


def _to_frames(path: Path) -> torch.Tensor:
    """One recording -> float16 [T, 2, 48, 48] event counts (area-averaged)."""
    import tonic.io
    from tonic.transforms import ToFrame

    try:
        events = tonic.io.read_aedat4(str(path))
    except ImportError as e:
        raise SeennError(f"reading {path} needs the 'aedat' package: pip install aedat ({e})") from e
    except Exception as e:  # the Rust decoder raises plain exceptions on bad files
        raise SeennError(f"cannot read CIFAR10-DVS recording {path}: {e}") from e
    events.dtype.names = ["t", "x", "y", "p"]  # as tonic.datasets.CIFAR10DVS does
    if events.shape[0] == 0:
        raise SeennError(f"CIFAR10-DVS recording {path} holds no events")
    w, h, _ = SENSOR_SIZE
    if int(events["x"].max()) >= w or int(events["y"].max()) >= h:
        raise SeennError(f"CIFAR10-DVS recording {path} has events outside the {w}x{h} sensor")
    frames = ToFrame(sensor_size=SENSOR_SIZE, n_event_bins=TIMESTEPS)(events)  # int16 [T, P, H, W]
    x = torch.from_numpy(frames.astype(np.float32))
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="area")
    return x.to(torch.float16)


def _load(data_cfg: dict, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from ..progress import progress

    folder, names, y = _discover(data_cfg)
    idx = _split_indices(y, int(data_cfg["val_size"]), seed)
    x = torch.empty((len(names), TIMESTEPS, SENSOR_SIZE[2], SIZE, SIZE), dtype=torch.float16)
    for k, name in enumerate(progress(names, desc="CIFAR10-DVS -> frames", unit="rec")):
        x[k] = _to_frames(folder / name)
    return {split: (x[i].contiguous(), y[i].contiguous()) for split, i in idx.items()}


SPEC = DatasetSpec(
    name="cifar10dvs",
    num_classes=10,
    input_shape=(TIMESTEPS, SENSOR_SIZE[2], SIZE, SIZE),
    mean=(0.0, 0.0),
    std=(1.0, 1.0),
    event=True,
    load=_load,
    where=f"<data.root>/{FOLDER}/<class>/*.aedat4 (tonic's CIFAR10DVS layout)",
)
