"""Training augmentation on a whole batch held on the training device (`loader.augment_on`).

Each sample's parameters are drawn on the CPU from its own generator (`source.sample_generator`),
the same draws in the same order as data.augment's per-sample path (`draw`); the batch is then
augmented at once on its device (`augment_batch`). On the same seeds the result is the per-sample
path's: the same tensors for crop, flip, Cutout and the event-frame transforms; for AutoAugment
the same operations and magnitudes (tests/test_device_augment.py gives the image tolerance), its
colour operations by torchvision's own functions on the samples that share one, its geometric
operations, AutoContrast and Equalize rewritten for a batch with torchvision's arithmetic and
without its host syncs (each checked against torchvision's). torchvision's v2 transforms are not
used: they draw one set of parameters per batch from the global generator."""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torchvision.transforms import AutoAugment, AutoAugmentPolicy

from seenn.data.augment import AUTHORS_FILL, CUTOUT_LENGTH, MAX_ROLL, MAX_ROTATION
from seenn.data.augment_modes import check_augmentation
from seenn.data.source import sample_generator
from seenn.data.spec import DatasetSpec, to_input

__all__ = ["SampleDraws", "augment_batch", "draw"]

PAD = 4  # random_crop_flip's zero padding


def _policy(protocol: str, channels: int) -> AutoAugment:
    """The AutoAugment of data.augment.auto_augment for `protocol`."""
    return AutoAugment(AutoAugmentPolicy.CIFAR10, fill=[AUTHORS_FILL] * channels if protocol == "authors" else None)


def _auto_augment_ops(policy: AutoAugment, seed: int, size: tuple[int, int]) -> tuple:
    """The operations AutoAugment.forward applies under torch.manual_seed(seed), in order: one
    (name, magnitude) or None (not applied) per operation of the drawn sub-policy. The draws are
    AutoAugment.get_params', on a generator of that seed instead of the global one."""
    g = torch.Generator().manual_seed(seed)
    policy_id = int(torch.randint(len(policy.policies), (1,), generator=g).item())
    probs = torch.rand((2,), generator=g)
    signs = torch.randint(2, (2,), generator=g)
    meta = policy._augmentation_space(10, size)
    ops = []
    for i, (name, p, magnitude_id) in enumerate(policy.policies[policy_id]):
        if not probs[i] <= p:
            ops.append(None)
            continue
        magnitudes, signed = meta[name]
        magnitude = float(magnitudes[magnitude_id].item()) if magnitude_id is not None else 0.0
        if signed and signs[i] == 0:
            magnitude *= -1.0
        ops.append((name, magnitude))
    return tuple(ops)


def draw(mode: str, generator: torch.Generator, shape: tuple[int, ...], policy: AutoAugment | None = None) -> dict:
    """One sample's augmentation parameters (plain Python values), drawn from `generator` exactly
    as data.augment.augmented_input draws them for that sample alone; `shape` its stored shape."""
    h, w = shape[-2:]
    if mode == "none":
        return {}
    if mode == "flip_roll_rotate":
        flip = bool(torch.rand(1, generator=generator) < 0.5)
        roll = bool(torch.rand(1, generator=generator) < 0.5)
        shifts = torch.randint(-MAX_ROLL, MAX_ROLL + 1, (1, 2), generator=generator)
        angle = float((torch.rand(1, generator=generator) * 2 - 1) * MAX_ROTATION)
        return {"flip": flip, "roll": roll, "shift": (int(shifts[0, 0]), int(shifts[0, 1])), "angle": angle}
    out = {"dx": int(torch.randint(0, 2 * PAD + 1, (1,), generator=generator)),
           "dy": int(torch.randint(0, 2 * PAD + 1, (1,), generator=generator)),
           "flip": bool(torch.rand(1, generator=generator) < 0.5)}
    if mode == "autoaugment_cutout":
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        out["ops"] = _auto_augment_ops(policy or _policy("project", shape[0]), seed, (h, w))
        out["cy"] = int(torch.randint(0, h, (1, 1, 1), generator=generator))
        out["cx"] = int(torch.randint(0, w, (1, 1, 1), generator=generator))
    return out


class SampleDraws(torch.utils.data.Dataset):
    """Item (sample index, position in the epoch's order, epoch seed) -> (index, its draws): the
    CPU half of the device path, run by DataLoader workers when `loader.workers` > 0."""

    def __init__(self, mode: str, shape: tuple[int, ...], protocol: str = "project"):
        self.mode, self.shape, self.protocol = mode, tuple(shape), protocol
        self.policy = _policy(protocol, shape[0]) if mode == "autoaugment_cutout" else None

    def __getitem__(self, item):
        i, position, epoch_seed = item
        return i, draw(self.mode, sample_generator(epoch_seed, position), self.shape, self.policy)

    @staticmethod
    def collate(items):
        """(index tensor, list of draws) of a batch."""
        return torch.tensor([i for i, _ in items], dtype=torch.int64), [d for _, d in items]


def _on(values, device, dtype=torch.int64) -> torch.Tensor:
    """Host values as a tensor on `device`, copied without waiting for the device's queue (a
    blocking copy would stop the host until the previous training step is done)."""
    return torch.as_tensor(values, dtype=dtype).to(device, non_blocking=True)


def _column(draws: list[dict], key: str, device, dtype=torch.int64) -> torch.Tensor:
    return _on([d[key] for d in draws], device, dtype)


def crop_flip(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, flip: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Per-sample crop at offset (dy, dx) of the zero-padded images, mirrored where `flip`."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = dy[:, None] + ys
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - xs, xs)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, length: int = CUTOUT_LENGTH) -> torch.Tensor:
    """One `length` px square per sample, centred at (cy, cx) and clipped at the borders, set to 0."""
    h, w = x.shape[-2:]
    ys, xs = torch.arange(h, device=x.device).view(1, -1, 1), torch.arange(w, device=x.device).view(1, 1, -1)
    cy, cx = cy.view(-1, 1, 1), cx.view(-1, 1, 1)
    hole = (ys >= cy - length // 2) & (ys < cy + length // 2) & (xs >= cx - length // 2) & (xs < cx + length // 2)
    return x.masked_fill(hole.unsqueeze(1), 0.0)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """torchvision's equalize (per image and channel: the histogram's cumulative sum over its
    step, the image kept where the step is 0) for a uint8 batch at once, in integers. On a GPU
    the library's loop over images and channels stops on the host at every channel, and its
    torch.histc is refused under deterministic algorithms (`deterministic: true`)."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).long()
    bins = (flat + 256 * torch.arange(n * c, device=x.device)[:, None]).view(-1)  # one scatter over 1-D bins:
    hist = torch.zeros(n * c * 256, dtype=torch.int64, device=x.device)  # deterministic on CUDA, no host sync
    hist = hist.scatter_add_(0, bins, torch.ones_like(bins)).view(n * c, 256)
    step = (h * w - hist.gather(1, flat.amax(1, keepdim=True))) // 255  # all but the top non-empty bin, / 255
    lut = (hist.cumsum(1) + step // 2) // step.clamp(min=1)
    lut = F.pad(lut, [1, 0])[:, :-1].clamp(0, 255)
    out = torch.where(step == 0, flat, lut.gather(1, flat))
    return out.to(torch.uint8).view(n, c, h, w)


@contextlib.contextmanager
def _full_precision(device: torch.device):
    """float32 matmuls and convolutions without TF32 (`tf32: true`) while augmenting on CUDA: it
    would move AutoAugment's sampling grids and blurs off the CPU path's values."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")  # AutoAugment's affine operations


def _affine_matrix(name: str, magnitude: float, h: int, w: int) -> list[float]:
    """The inverse affine matrix torchvision's AutoAugment hands its tensor kernel for a geometric
    operation (`_apply_op` -> F.affine / F.rotate on a tensor image of h x w)."""
    from torchvision.transforms.functional import _get_inverse_affine_matrix as inverse

    corner = [1.0 * (0 - w * 0.5), 1.0 * (0 - h * 0.5)]  # F.affine's centre [0, 0], in its centred coordinates
    if name == "ShearX":
        return inverse(corner, 0.0, [0.0, 0.0], 1.0, [math.degrees(math.atan(magnitude)), 0.0])
    if name == "ShearY":
        return inverse(corner, 0.0, [0.0, 0.0], 1.0, [0.0, math.degrees(math.atan(magnitude))])
    if name == "TranslateX":
        return inverse([0.0, 0.0], 0.0, [1.0 * int(magnitude), 0.0], 1.0, [0.0, 0.0])
    if name == "TranslateY":
        return inverse([0.0, 0.0], 0.0, [0.0, 1.0 * int(magnitude)], 1.0, [0.0, 0.0])
    if name == "Rotate":
        return inverse([0.0, 0.0], -magnitude, [0.0, 0.0], 1.0, [0.0, 0.0])
    raise ValueError(f"{name} is not one of AutoAugment's geometric operations {GEOMETRIC}")


def _affine_grids(matrices: list[list[float]], h: int, w: int) -> torch.Tensor:
    """torchvision's sampling grid (_gen_affine_grid, output the input's size) of each inverse
    affine matrix: [len(matrices), h, w, 2], built on the CPU in float32 as the per-sample path
    builds it (the same bytes; a few KiB per sample to copy to the device)."""
    theta = torch.tensor(matrices, dtype=torch.float32).view(-1, 2, 3)
    base = torch.empty(1, h, w, 3, dtype=theta.dtype)
    base[..., 0].copy_(torch.linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, steps=w))
    base[..., 1].copy_(torch.linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, steps=h).unsqueeze_(-1))
    base[..., 2].fill_(1)
    scale = torch.tensor([0.5 * w, 0.5 * h], dtype=theta.dtype)
    return base.view(1, h * w, 3).expand(len(matrices), -1, -1).bmm(theta.transpose(1, 2) / scale).view(-1, h, w, 2)


def _grid_transform(x: torch.Tensor, grids: torch.Tensor, fill: list[float] | None = None) -> torch.Tensor:
    """torchvision's _apply_grid_transform (nearest neighbour) with a grid per image: pixels from
    outside are 0, or `fill` per channel (its masked assignment as a `where`: no host sync)."""
    img = x if x.dtype == torch.float32 else x.float()
    if fill is not None:
        img = torch.cat((img, torch.ones_like(img[:, :1])), dim=1)
    img = F.grid_sample(img, grids, mode="nearest", padding_mode="zeros", align_corners=False)
    if fill is not None:
        outside = img[:, -1:] < 0.5
        img = torch.where(outside, _on(fill, x.device, torch.float32).view(1, -1, 1, 1), img[:, :-1])
    if x.dtype == torch.float32:
        return img
    return (img if x.dtype.is_floating_point else torch.round(img)).to(x.dtype)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """torchvision's autocontrast for a uint8 batch, its masked assignments as `where`s (no host sync)."""
    lo = x.amin(dim=(-2, -1), keepdim=True).float()
    hi = x.amax(dim=(-2, -1), keepdim=True).float()
    scale = 255.0 / (hi - lo)
    flat = ~torch.isfinite(scale)
    lo, scale = torch.where(flat, 0.0, lo), torch.where(flat, 1.0, scale)
    return ((x - lo) * scale).clamp(0, 255).to(x.dtype)


def auto_augment(x: torch.Tensor, ops: list[tuple], policy: AutoAugment) -> torch.Tensor:
    """AutoAugment on a uint8 batch: `ops[k]` the operations of sample k (draw's "ops"), applied
    in order. At each of the two steps the geometric operations of all samples run as one grid
    sample (each sample its own matrix), AutoContrast and Equalize at once, and each other
    operation through torchvision's function on the samples that drew it with that magnitude."""
    from torchvision.transforms.autoaugment import _apply_op

    fill = None if policy.fill is None else [float(f) for f in policy.fill]
    h, w = x.shape[-2:]
    out = x.clone()
    with _full_precision(x.device):
        for step in range(max((len(o) for o in ops), default=0)):
            groups = defaultdict(list)
            for k, sample_ops in enumerate(ops):
                if sample_ops[step] is not None:
                    name, magnitude = sample_ops[step]
                    groups["geometric" if name in GEOMETRIC else sample_ops[step]].append(k)
            for key, members in groups.items():
                idx = _on(members, x.device)
                if key == "geometric":
                    grids = _affine_grids([_affine_matrix(*ops[k][step], h, w) for k in members], h, w)
                    out[idx] = _grid_transform(out[idx], grids.to(x.device, non_blocking=True), fill)
                elif key[0] == "Equalize":
                    out[idx] = equalize(out[idx])
                elif key[0] == "AutoContrast":
                    out[idx] = autocontrast(out[idx])
                else:
                    out[idx] = _apply_op(out[idx], *key, interpolation=policy.interpolation, fill=fill)
    return out


def flip_roll_rotate(x: torch.Tensor, draws: list[dict]) -> torch.Tensor:
    """Event frames [N, T, C, H, W]: per sample a horizontal flip where drawn, then a roll or a
    nearest-neighbour rotation (zeros outside), the same for all its frames."""
    from torchvision.transforms.functional import _get_inverse_affine_matrix

    n, t, c, h, w = x.shape
    dev = x.device
    flip = _column(draws, "flip", dev, torch.bool).view(-1, 1, 1, 1, 1)
    v = torch.where(flip, x.flip(-1), x)
    out = torch.empty_like(x)
    roll = [k for k, d in enumerate(draws) if d["roll"]]
    turn = [k for k, d in enumerate(draws) if not d["roll"]]
    if roll:
        idx = _on(roll, dev)
        shifts = _on([draws[k]["shift"] for k in roll], dev)
        rows = (torch.arange(h, device=dev) - shifts[:, :1]) % h  # torch.roll: out[i] = in[i - shift]
        cols = (torch.arange(w, device=dev) - shifts[:, 1:]) % w
        sel = v[idx].gather(3, rows.view(-1, 1, 1, h, 1).expand(-1, t, c, h, w))
        out[idx] = sel.gather(4, cols.view(-1, 1, 1, 1, w).expand(-1, t, c, h, w))
    if turn:
        idx = _on(turn, dev)
        matrices = [_get_inverse_affine_matrix([0.0, 0.0], -draws[k]["angle"], [0.0, 0.0], 1.0, [0.0, 0.0]) for k in turn]
        grids = _affine_grids(matrices, h, w).to(dev, non_blocking=True).repeat_interleave(t, 0)
        turned = _grid_transform(v[idx].float().reshape(-1, c, h, w), grids)  # TF.rotate of the float frames
        out[idx] = turned.view(-1, t, c, h, w).to(x.dtype)
    return out


def augment_batch(mode: str, spec: DatasetSpec, x: torch.Tensor, draws: list[dict], protocol: str = "project",
                  policy: AutoAugment | None = None) -> torch.Tensor:
    """Stored samples `x` (on any device) -> augmented network input, sample k by `draws[k]`:
    data.augment.augmented_input's result for the same draws, computed for the batch at once."""
    check_augmentation(mode, spec.name, spec.event)
    if len(draws) != x.shape[0]:
        raise ValueError(f"{len(draws)} draws for a batch of {x.shape[0]} samples")
    authors, dev = protocol == "authors", x.device
    if mode == "flip_roll_rotate":
        x = flip_roll_rotate(x, draws)
    elif mode != "none":
        x = crop_flip(x, _column(draws, "dx", dev), _column(draws, "dy", dev), _column(draws, "flip", dev, torch.bool))
    if mode == "autoaugment_cutout":
        x = auto_augment(x, [d["ops"] for d in draws], policy or _policy(protocol, x.shape[1]))
        holes = _column(draws, "cy", dev), _column(draws, "cx", dev)
        if authors:
            x = cutout(x, *holes)
    out = to_input(spec, x)
    if mode == "autoaugment_cutout" and not authors:
        out = cutout(out, *holes)
    return out
