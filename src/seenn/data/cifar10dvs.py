"""CIFAR10-DVS: 10,000 AEDAT4 event recordings (128x128, 2 polarities) -> [frames, 2, size, size].

Layout is tonic's (`tonic.datasets.CIFAR10DVS(save_to=root)` extracts to `<root>/CIFAR10DVS/`):
one folder per class (airplane/ ... truck/) holding `*.aedat4` files. We walk that layout ourselves
and read each file with `tonic.io.read_aedat4` (needs the `aedat` package), because tonic's dataset
class re-downloads unless the 1000+ files *and* the original zip are present.

Each recording becomes `data.frames` frames (default 10) with equal event counts (tonic
`ToFrame(n_event_bins=...)`), resized 128 -> `data.frame_size` (default 48) by `data.frame_resize`:
`area` (default: each output pixel averages its input footprint, so every event contributes;
bilinear without antialiasing would skip pixels of sparse frames), `bilinear` (antialiased) or
`nearest`. Stored as float16 event counts. Decoded frames are cached in
`data/cache/cifar10dvs/<key>/frames.pt` (outside the declared outputs), the key hashing every
parameter of the transform, the split list's sha256 and tonic's version: a second data stage
with the same settings decodes nothing.

No official split: the fixed 9:1 per-class split is the committed list `data/splits/cifar10dvs.txt`
(`class,file,split` for all 10,000 recordings, split `train` or `test`; made once by a stratified
draw with TEST_SPLIT_SEED over the sorted names). Its sha256 is pinned here and checked at every
run, and the recordings on disk must be exactly the listed ones. A different copy of the dataset
brings its own list (`data.split_list`, pinned by `data.split_list_sha256`; `write_split_list`,
i.e. `seenn data split-list ROOT`, makes one by the same rule). val (`val_size`) is carved,
stratified with the run seed, from the list's train part. `train_size` / `test_size` are ignored.
`split_file_list` gives the file names of each split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from seenn.common.errors import SeennError
from seenn.data import split_list
from seenn.data.spec import DatasetSpec, stratified_split

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SENSOR_SIZE = (128, 128, 2)  # (W, H, P), as tonic.datasets.CIFAR10DVS.sensor_size
TIMESTEPS = 10
SIZE = 48
TEST_FRACTION = 0.1
TEST_SPLIT_SEED = 0  # fixes the test split across run seeds
FOLDER = "CIFAR10DVS"
RECORDINGS_PER_CLASS = 1000
SPLIT_LIST = Path(__file__).resolve().parents[3] / "data" / "splits" / "cifar10dvs.txt"
SPLIT_LIST_SHA256 = "c4fa3616067269faaa283edd9e15f30576ac35299131921b4510506842dd72ae"  # of data/splits/cifar10dvs.txt
CACHE_ROOT = Path("data/cache/cifar10dvs")  # relative to the project directory the stages run in
RESIZE_MODES = ("area", "bilinear", "nearest")


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


def split_list_text(names: list[str]) -> str:
    """The split list for recordings `names` ('class/file.aedat4'): 10 % of each class to test,
    drawn with TEST_SPLIT_SEED over the sorted names, the rest train; one `class,file,split` line each."""
    names = sorted(names)
    y = torch.tensor([CLASSES.index(n.split("/")[0]) for n in names], dtype=torch.int64)
    n_test = round(len(names) * TEST_FRACTION)
    test = set(stratified_split(y, {"test": n_test, "rest": len(names) - n_test}, TEST_SPLIT_SEED)["test"].tolist())
    lines = [f"{n.split('/')[0]},{n.split('/')[1]},{'test' if i in test else 'train'}" for i, n in enumerate(names)]
    return "class,file,split\n" + "\n".join(lines) + "\n"


def read_split_list(data_cfg: dict | None = None) -> tuple[str, dict[str, str]]:
    """(sha256 of the split list, {'class/file.aedat4': 'train' | 'test'}): the config's own list
    (`data.split_list`, checked against `data.split_list_sha256`) when it names one, else the
    committed list, checked against the pinned sha256."""
    own = split_list.read_configured(data_cfg or {})
    if own is not None:
        return own
    try:
        data = SPLIT_LIST.read_bytes()
    except OSError:
        raise SeennError(f"CIFAR10-DVS split list {SPLIT_LIST} is missing: restore it from git "
                         f"(git checkout -- {SPLIT_LIST.name})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != SPLIT_LIST_SHA256:
        raise SeennError(f"CIFAR10-DVS split list {SPLIT_LIST} was edited (sha256 {digest[:12]}..., pinned "
                         f"{SPLIT_LIST_SHA256[:12]}...): restore it from git")
    return digest, split_list.parse(data, f"CIFAR10-DVS split list {SPLIT_LIST}")


def _list_name(data_cfg: dict) -> str:
    """How an error names the split list in use."""
    own = split_list.configured(data_cfg)
    return f"'{split_list.KEY}' {own}" if own is not None else f"the split list {SPLIT_LIST}"


def _check_against_list(folder: Path, names: list[str], listed: dict[str, str], data_cfg: dict) -> None:
    """The recordings on disk must be exactly the listed ones; the error names the first file
    (in sorted order) that is listed but missing or present but not listed."""
    missing = sorted(set(listed) - set(names))
    extra = sorted(set(names) - set(listed))
    if missing or extra:
        counts = [f"{len(missing)} listed recordings are missing"] if missing else []
        counts += [f"{len(extra)} recordings are not in the list"] if extra else []
        first = min(missing[:1] + extra[:1])
        how = "listed but missing" if missing and first == missing[0] else "on disk but not listed"
        raise SeennError(f"dataset 'cifar10dvs': the files in {folder} do not match {_list_name(data_cfg)}: "
                         f"{' and '.join(counts)}; first differing file {folder / first} ({how})")


def write_split_list(root: str | Path, output: str | Path) -> tuple[str, dict[str, int]]:
    """Write the split list of the recordings under `root` (a `data.root`, holding CIFAR10DVS/) by
    the committed list's rule to `output`; returns its sha256 and the number of recordings per split."""
    from seenn.common.io import write_text

    if Path(output).resolve() == SPLIT_LIST:
        raise SeennError(f"{output} is the committed split list (pinned in the code): write yours elsewhere")
    _, names, _ = _discover({"root": str(root)})
    text = split_list_text(names)
    write_text(output, text)
    splits = [line.rsplit(",", 1)[1] for line in text.splitlines()[1:]]
    return hashlib.sha256(text.encode()).hexdigest(), {s: splits.count(s) for s in split_list.SPLIT_NAMES}


def _split_indices(names: list[str], y: torch.Tensor, listed: dict[str, str], val_size: int,
                   seed: int) -> dict[str, torch.Tensor]:
    test = torch.tensor([i for i, n in enumerate(names) if listed[n] == "test"], dtype=torch.int64)
    rest = torch.tensor([i for i, n in enumerate(names) if listed[n] == "train"], dtype=torch.int64)
    if not 0 < val_size < rest.numel():
        raise SeennError(f"data.val_size must lie in [1, {rest.numel() - 1}] for cifar10dvs, got {val_size}")
    inner = stratified_split(y[rest], {"train": rest.numel() - val_size, "val": val_size}, seed)
    return {"train": rest[inner["train"]], "val": rest[inner["val"]], "test": test}


def _checked_splits(data_cfg: dict, seed: int):
    """(folder, names, labels, split indices, split list sha256) after every check."""
    folder, names, y = _discover(data_cfg)
    digest, listed = read_split_list(data_cfg)
    _check_against_list(folder, names, listed, data_cfg)
    return folder, names, y, _split_indices(names, y, listed, int(data_cfg["val_size"]), seed), digest


def split_file_list(data_cfg: dict, seed: int) -> dict[str, list[str]]:
    """Sorted recording names ('class/file.aedat4') of each split, for publishing with a hash."""
    _, names, _, idx, _ = _checked_splits(data_cfg, seed)
    return {split: sorted(names[i] for i in idx[split].tolist()) for split in ("train", "val", "test")}


def frame_settings(data_cfg: dict) -> tuple[int, int, str]:
    """(frames, frame size, resize method) of the config (the defaults where a key is absent)."""
    frames, size, mode = (int(data_cfg.get("frames", TIMESTEPS)), int(data_cfg.get("frame_size", SIZE)),
                          data_cfg.get("frame_resize", "area"))
    if mode not in RESIZE_MODES:
        raise SeennError(f"data.frame_resize must be one of {', '.join(RESIZE_MODES)}, got {mode!r}")
    return frames, size, mode


def cache_key(frames: int, size: int, mode: str, list_sha256: str) -> str:
    """The frame cache's key: every transform parameter, the split list and tonic's version."""
    import tonic

    settings = {"frames": frames, "frame_size": size, "frame_resize": mode, "split_list": list_sha256,
                "tonic": tonic.__version__, "sensor": SENSOR_SIZE}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _to_frames(path: Path, frames: int = TIMESTEPS, size: int = SIZE, mode: str = "area") -> torch.Tensor:
    """One recording -> float16 [frames, 2, size, size] event counts (resized by `mode`)."""
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
    binned = ToFrame(sensor_size=SENSOR_SIZE, n_event_bins=frames)(events)  # int16 [T, P, H, W]
    x = torch.from_numpy(binned.astype(np.float32))
    if mode == "bilinear":
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    else:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode=mode)
    return x.to(torch.float16)


def decoded_frames(folder: Path, names: list[str], data_cfg: dict, list_sha256: str) -> torch.Tensor:
    """Frames of every recording in `names` order, from the cache when its key matches, else
    decoded and cached (a checked file written atomically)."""
    from seenn.common.io import load_checked, save_checked
    from seenn.common.progress import progress

    frames, size, mode = frame_settings(data_cfg)
    path = CACHE_ROOT / cache_key(frames, size, mode, list_sha256) / "frames.pt"
    if path.exists():
        cached = load_checked(path, what="CIFAR10-DVS frame cache", producer="the prepare_data stage")
        if isinstance(cached, dict) and cached.get("names") == names:
            return cached["x"]
    x = torch.empty((len(names), frames, SENSOR_SIZE[2], size, size), dtype=torch.float16)
    for k, name in enumerate(progress(names, desc="CIFAR10-DVS -> frames", unit="rec")):
        x[k] = _to_frames(folder / name, frames, size, mode)
    save_checked(path, {"names": names, "x": x})
    return x


def _load(data_cfg: dict, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    folder, names, y, idx, digest = _checked_splits(data_cfg, seed)
    x = decoded_frames(folder, names, data_cfg, digest)
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
