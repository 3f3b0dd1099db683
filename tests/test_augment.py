"""Training augmentation: each mode does what it says, draws only from the run's generator (same
seed, same batch; a resumed run repeats it), and refuses event frames."""

import pytest
import torch

from seenn.data.augment import AUGMENTATIONS, augmented_input, cutout, flip_roll_rotate, random_crop_flip
from seenn.data.augment_modes import EVENT_DATASETS
from seenn.data.registry import get_spec
from seenn.data.spec import to_input

CIFAR = get_spec("cifar100")


def images(n=6, seed=0):
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_none_is_the_plain_input():
    x = images()
    assert torch.equal(augmented_input("none", CIFAR, x, torch.Generator().manual_seed(1)), to_input(CIFAR, x))


@pytest.mark.parametrize("mode", [m for m in AUGMENTATIONS if m != "flip_roll_rotate"])
def test_same_generator_state_gives_the_same_batch_and_global_rng_is_untouched(mode):
    x = images()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = augmented_input(mode, CIFAR, x, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), before)  # AutoAugment runs under a forked generator
    b = augmented_input(mode, CIFAR, x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == (6, 3, 32, 32) and a.dtype == torch.float32
    if mode != "none":
        assert not torch.equal(a, augmented_input(mode, CIFAR, x, torch.Generator().manual_seed(8)))


def test_crop_flip_moves_pixels_without_inventing_values():
    x = images()
    out = random_crop_flip(x, torch.Generator().manual_seed(3))
    for i in range(len(x)):  # every nonzero pixel of the crop exists in the source image
        assert set(out[i].unique().tolist()) - {0} <= set(x[i].unique().tolist())


def test_cutout_zeroes_one_square_of_at_most_16_px_per_sample():
    x = torch.ones(200, 3, 32, 32)
    out = cutout(x, torch.Generator().manual_seed(0))
    holes = (out == 0).all(1)  # [N, H, W]: the hole covers every channel
    assert torch.equal((out == 0).any(1), holes)
    for h in holes:
        rows, cols = h.any(1).nonzero().flatten(), h.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 16 and 1 <= len(cols) <= 16
        assert int(h.sum()) == len(rows) * len(cols)  # a rectangle (a square clipped at the border)
        assert torch.equal(rows, torch.arange(rows[0], rows[-1] + 1))
    assert (holes.flatten(1).sum(1) == 256).float().mean() > 0.2  # whole squares away from borders


def test_autoaugment_cutout_changes_images_and_leaves_holes_at_the_mean():
    x = images(32)
    out = augmented_input("autoaugment_cutout", CIFAR, x, torch.Generator().manual_seed(0))
    assert ((out == 0).all(1).flatten(1).sum(1) > 0).all()  # every sample has its hole
    crop_only = augmented_input("crop_flip", CIFAR, x, torch.Generator().manual_seed(0))
    assert not torch.equal(out, crop_only)


def test_modes_refuse_the_other_kind_of_input():
    dvs = get_spec("cifar10dvs")
    x = torch.zeros(2, *dvs.input_shape, dtype=torch.float16)
    with pytest.raises(ValueError, match="holds event frames"):
        augmented_input("crop_flip", dvs, x, torch.Generator())
    with pytest.raises(ValueError, match="holds static images"):
        augmented_input("flip_roll_rotate", CIFAR, images(), torch.Generator())
    with pytest.raises(ValueError, match="unknown augmentation"):
        augmented_input("mixup", CIFAR, images(), torch.Generator())


def test_event_datasets_list_matches_the_dataset_specs():
    for name in ("digits", "cifar10", "cifar100", "cifar10dvs"):
        assert get_spec(name).event == (name in EVENT_DATASETS)


def event_frames(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 4, (n, 10, 2, 48, 48), generator=g).to(torch.float16)


def test_flip_roll_rotate_moves_every_frame_of_a_sample_alike():
    x = event_frames()
    x[:, 1] = x[:, 0]  # frames 0 and 1 equal: they must stay equal after the augmentation
    out = flip_roll_rotate(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[:, 0], out[:, 1])
    kept = [(o == v).all() or (o == v.flip(-1)).all() for o, v in zip(out, x)]
    assert not all(kept)  # some samples are rolled or rotated, not just flipped
    for o, v in zip(out, x):  # a roll keeps every count (it wraps around); a rotation keeps values from the frame
        assert set(o.unique().tolist()) <= set(v.unique().tolist()) | {0.0}


def test_flip_roll_rotate_draws_roll_and_rotation_within_their_limits():
    x = torch.zeros(400, 1, 1, 48, 48, dtype=torch.float16)
    x[:, :, :, 24, 24] = 1  # one event beside the centre: a flip moves it to column 23, a roll by
    out = flip_roll_rotate(x, torch.Generator().manual_seed(2))  # up to 5 px, a rotation by at most 1 px
    seen = out.flatten(1).amax(1) > 0
    pos = out.flatten(1).argmax(1)
    row, col = pos // 48, pos % 48
    assert ((row - 24).abs() <= 5).all() and ((col >= 18) & (col <= 29)).all()
    far = seen & (((row - 24).abs() > 1) | (col < 22) | (col > 25))  # only a roll gets there
    assert 0.3 < far.float().mean() < 0.6  # half the samples are rolled; most rolls move it that far


def test_dvs_training_input_with_flip_roll_rotate_is_repeatable():
    dvs = get_spec("cifar10dvs")
    x = event_frames(4)
    a = augmented_input("flip_roll_rotate", dvs, x, torch.Generator().manual_seed(5))
    assert torch.equal(a, augmented_input("flip_roll_rotate", dvs, x, torch.Generator().manual_seed(5)))
    assert a.dtype == torch.float32 and a.shape == x.shape


def _fit(tmp_path, mode, tag):
    from seenn.loops.fit import fit
    from seenn.models import build_snn
    from seenn.snn.losses import mean_loss

    spec = get_spec("digits")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (24, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.arange(24) % 10
    torch.manual_seed(0)
    model = build_snn({"arch": "resnet", "stem_channels": 4, "widths": [4], "blocks": [1]},
                      {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}, 1, 10)
    cfg = {"epochs": 1, "batch_size": 12, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "augment": mode}
    from seenn.data.source import TensorSource

    train, val = TensorSource(spec, x, y, "train", "memory"), TensorSource(spec, x[:10], y[:10], "val", "memory")
    fit(model, mean_loss, train, val, timesteps=2, cfg=cfg, seed=3, device=torch.device("cpu"),
        ckpt_dir=tmp_path / tag, fp=tag, desc="fit")
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_training_with_each_mode_is_repeatable_and_the_modes_differ(tmp_path):
    weights = {m: _fit(tmp_path, m, f"{m}_a") for m in ("none", "crop_flip", "autoaugment_cutout")}
    assert torch.equal(weights["autoaugment_cutout"], _fit(tmp_path, "autoaugment_cutout", "aa_b"))
    assert not torch.equal(weights["none"], weights["crop_flip"])
    assert not torch.equal(weights["crop_flip"], weights["autoaugment_cutout"])
