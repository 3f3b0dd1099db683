"""Where a stage's samples come from: `SplitSource`, one interface over a prepared split held in
memory (a uint8 / float16 tensor: digits, CIFAR, CIFAR10-DVS) or streamed from image files listed
by a manifest split file (ImageNet, too large to hold), and the two ways every stage gets batches
from it: in order for evaluation (`eval_batches`), and shuffled + augmented for training
(`training.ShuffledBatches`, which uses `sample_generator` and `worker_loader` from here).

Augmentation is seeded per sample: sample k of an epoch's order draws from its own generator,
seeded from the epoch's seed and k (`sample_generator`), so the result does not depend on how
many DataLoader workers run, in which process, or how a global batch is sharded across ranks."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

import torch

from seenn.common.errors import SeennError
from seenn.data.augment_modes import check_augmentation
from seenn.data.spec import DatasetSpec, to_input

DEFAULT_LOADER = {"workers": 0, "pin_memory": False, "prefetch": 2, "augment_on": "auto"}  # the `loader:` section
AUGMENT_PLACES = ("auto", "cpu", "device")  # `loader.augment_on`
_SEED_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant: spreads positions over the seed space


def sample_generator(epoch_seed: int, position: int) -> torch.Generator:
    """The generator of the sample at `position` of an epoch's order (same in any process)."""
    return torch.Generator().manual_seed((epoch_seed + (position + 1) * _SEED_MIX) % 2**63)


def loader_settings(loader: dict | None) -> dict:
    """The `loader:` section with defaults for absent keys; SeennError naming a key out of range."""
    cfg = {**DEFAULT_LOADER, **(loader or {})}
    if cfg["augment_on"] not in AUGMENT_PLACES:
        raise SeennError(f"config 'loader.augment_on: {cfg['augment_on']}' is not one of {', '.join(AUGMENT_PLACES)}")
    for key, low in (("workers", 0), ("prefetch", 1)):
        if not isinstance(cfg[key], int) or cfg[key] < low:
            raise SeennError(f"config 'loader.{key}: {cfg[key]}' must be an integer of at least {low}")
    return cfg


def augments_on_device(loader: dict | None, source: "SplitSource", device: torch.device | None) -> bool:
    """Whether training batches of `source` are augmented on `device` (`loader.augment_on`):
    `device` always for a split held in memory, `cpu` never, `auto` when the device is not the
    CPU. A streamed split is decoded and augmented in the loader's workers whatever the key says."""
    place = loader_settings(loader)["augment_on"]
    if source.streamed or place == "cpu":
        return False
    return place == "device" or (device is not None and torch.device(device).type != "cpu")


def _stack(items):
    """Collate (input, label) pairs into a batch."""
    xs, ys = zip(*items)
    return torch.stack(xs), torch.stack(ys)


class _Batches:
    """A batch sampler whose batches are set before each pass (one DataLoader, many passes)."""

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class WorkerBatches:
    """Batches of `dataset[item]`, collated by `collate` (None: inputs and labels stacked), for each
    item list of a pass (`run`): in this process (`loader.workers` 0) or by that many DataLoader
    worker processes, each preparing `loader.prefetch` batches ahead, into pinned memory when `loader.pin_memory` is set
    and CUDA is present. With `persistent` the workers stay up from one pass to the next (one
    training run's epochs), so each epoch does not start them again."""

    def __init__(self, dataset, loader: dict | None, collate=None, persistent: bool = False):
        cfg = loader_settings(loader)
        collate = collate or _stack
        self.dataset, self.collate, self.workers = dataset, collate, cfg["workers"]
        self._sampler, self._loader = _Batches(), None
        if self.workers:
            from torch.utils.data import DataLoader

            self._loader = DataLoader(dataset, batch_sampler=self._sampler, num_workers=self.workers,
                                      collate_fn=collate, pin_memory=bool(cfg["pin_memory"]) and torch.cuda.is_available(),
                                      persistent_workers=persistent, prefetch_factor=cfg["prefetch"])

    def run(self, batches: list):
        """Iterate the batches of the item lists `batches`, in order."""
        if self._loader is None:
            return (self.collate([self.dataset[i] for i in b]) for b in batches)
        self._sampler.batches = list(batches)
        return _unwrapped(self._loader)


def worker_loader(dataset, batches: list, loader: dict | None):
    """Batches of `dataset[i]` for each index list in `batches`, one pass (WorkerBatches)."""
    return WorkerBatches(dataset, loader).run(batches)


def _unwrapped(loader):
    """Iterate a DataLoader; a SeennError raised in a worker comes back as its own one line."""
    try:
        yield from loader
    except SeennError as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        last = lines[-1] if lines else str(e)
        raise SeennError(last.split("SeennError: ", 1)[-1]) from None


class SplitSource:
    """One prepared split: `spec` (as this split's file sets it: input shape, normalization),
    labels `y`, and each sample as network input, with or without training augmentation."""

    streamed = False

    def __init__(self, spec: DatasetSpec, y: torch.Tensor, split: str, path: str, protocol: str = "project"):
        self.spec, self.y, self.split, self.path, self.protocol = spec, y, split, str(path), protocol

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def eval_inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """Network inputs of the samples `idx`, without augmentation."""
        raise NotImplementedError

    def train_input(self, i: int, generator: torch.Generator, augment: str) -> torch.Tensor:
        """Network input of sample `i` under training augmentation `augment`, drawn from `generator`."""
        raise NotImplementedError

    def subset(self, idx: torch.Tensor) -> "SplitSource":
        """The samples `idx` of this split, as a split of their own (a DDP rank's share)."""
        raise NotImplementedError

    def first(self, n: int) -> "SplitSource":
        """The same split cut to its first `n` samples (energy / latency on streamed data)."""
        return self.subset(torch.arange(min(n, len(self))))


class TensorSource(SplitSource):
    """A split held in memory: x uint8 images [N, C, H, W] or float16 event frames [N, T, C, H, W]."""

    def __init__(self, spec, x: torch.Tensor, y, split, path, protocol="project"):
        super().__init__(spec, y, split, path, protocol)
        self.x = x

    def eval_inputs(self, idx):
        return to_input(self.spec, self.x[idx])

    def train_input(self, i, generator, augment):
        from seenn.data.augment import augmented_input

        return augmented_input(augment, self.spec, self.x[i : i + 1], generator, self.protocol)[0]

    def subset(self, idx):
        return TensorSource(self.spec, self.x[idx], self.y[idx], self.split, self.path, self.protocol)

    def to(self, device: torch.device) -> "TensorSource":
        """The split with its samples and labels on `device` (moved once, as stored: uint8 / float16)."""
        return TensorSource(self.spec, self.x.to(device), self.y.to(device), self.split, self.path, self.protocol)


class ImageFileSource(SplitSource):
    """A split streamed from image files (ImageNet): `files` relative to `root`, each checked
    against its sha256 when read; eval transform Resize(resize) + CenterCrop(crop), train
    transform (augment `crop_flip`) RandomResizedCrop(crop) + horizontal flip; then normalization."""

    streamed = True

    def __init__(self, spec, y, split, path, *, root: str, files: list[str], sha256: list[str], crop: int,
                 resize: int, protocol="project"):
        super().__init__(replace(spec, input_shape=(3, crop, crop)), y, split, path, protocol)
        self.root, self.files, self.sha256, self.crop, self.resize = Path(root), list(files), list(sha256), crop, resize

    def image(self, i: int):
        """Sample i as an RGB PIL image, after checking the file against the manifest."""
        from PIL import Image, UnidentifiedImageError

        path = self.root / self.files[i]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SeennError(f"image {path} listed in {self.path} cannot be read ({e.strerror or e}): restore it "
                             f"or rerun the prepare_data stage") from None
        if hashlib.sha256(data).hexdigest() != self.sha256[i]:
            raise SeennError(f"image {path} does not match its sha256 in {self.path}: restore it or rerun the "
                             f"prepare_data stage")
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise SeennError(f"image {path} cannot be decoded: {e}") from None

    def _normalized(self, img) -> torch.Tensor:
        from torchvision.transforms import functional as TF

        return to_input(self.spec, TF.pil_to_tensor(img)[None])[0]

    def eval_input(self, i: int) -> torch.Tensor:
        from torchvision.transforms import functional as TF

        img = TF.center_crop(TF.resize(self.image(i), self.resize), [self.crop, self.crop])
        return self._normalized(img)

    def eval_inputs(self, idx):
        return torch.stack([self.eval_input(int(i)) for i in idx])

    def train_input(self, i, generator, augment):
        from torchvision.transforms import RandomResizedCrop
        from torchvision.transforms import functional as TF

        try:
            check_augmentation(augment, self.spec.name, self.spec.event)
        except ValueError as e:
            raise SeennError(str(e)) from None
        if augment == "none":
            return self.eval_input(i)
        img = self.image(i)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):  # get_params draws from torch's global generator
            torch.manual_seed(seed)
            top, left, h, w = RandomResizedCrop.get_params(img, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
        img = TF.resized_crop(img, top, left, h, w, [self.crop, self.crop], antialias=True)
        if bool(torch.rand(1, generator=generator) < 0.5):
            img = TF.hflip(img)
        return self._normalized(img)

    def subset(self, idx):
        keep = [int(i) for i in idx]
        return ImageFileSource(self.spec, self.y[idx], self.split, self.path, root=str(self.root),
                               files=[self.files[i] for i in keep], sha256=[self.sha256[i] for i in keep],
                               crop=self.crop, resize=self.resize, protocol=self.protocol)


class _EvalItems(torch.utils.data.Dataset):
    """(eval input, label) of each sample of a streamed split, for DataLoader workers."""

    def __init__(self, source: SplitSource):
        self.source = source

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        return self.source.eval_inputs(torch.tensor([i]))[0], self.source.y[i]


class StreamedInputs:
    """The network inputs of a streamed split as an indexable stand-in for a tensor [N, C, H, W]
    (`view[index tensor]`, `view[i:j]`, `.shape`), decoded on demand: code written for a split
    in memory (SEENN-II policy training and evaluation) streams it batch by batch."""

    def __init__(self, source: SplitSource):
        self.source = source
        self.shape = torch.Size((len(source), *source.spec.input_shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        return self.source.eval_inputs(torch.as_tensor(idx).reshape(-1))


def held_inputs(source: SplitSource, stream_samples: int, loader: dict | None = None) -> tuple[SplitSource, torch.Tensor]:
    """(source, all its network inputs) for the stages that hold a split's inputs at once (energy,
    latency): a split in memory whole; a streamed one cut to its first `stream_samples` samples
    (`engine.stream_samples`), decoded in batches."""
    if not source.streamed:
        return source, to_input(source.spec, source.x)
    cut = source.first(min(stream_samples, len(source)))
    return cut, torch.cat([xb for xb, _ in eval_batches(cut, 256, loader)])


def eval_batches(source: SplitSource, batch_size: int, loader: dict | None = None):
    """(inputs, labels) batches of `source` in order, without augmentation. A split in memory is
    cut into batches here; a streamed one is decoded by `loader.workers` worker processes."""
    n = len(source)
    starts = range(0, n, batch_size)
    if not source.streamed:
        return ((source.eval_inputs(torch.arange(i, min(i + batch_size, n))), source.y[i : i + batch_size]) for i in starts)
    return worker_loader(_EvalItems(source), [list(range(i, min(i + batch_size, n))) for i in starts], loader)
