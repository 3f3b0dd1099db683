"""Names of the training augmentation modes and the kind of input each fits. Free of torch, so the
config check (run by Snakemake when it parses the workflow) stays light; `data.augment` does the work."""

from __future__ import annotations

IMAGE_AUGMENTATIONS = ("crop_flip", "autoaugment_cutout")
EVENT_AUGMENTATIONS = ("flip_roll_rotate",)
AUGMENTATIONS = ("none", *IMAGE_AUGMENTATIONS, *EVENT_AUGMENTATIONS)
EVENT_DATASETS = ("cifar10dvs",)  # datasets whose samples are event frames (DatasetSpec.event; a test checks)


def check_augmentation(mode: str, dataset: str, event: bool) -> None:
    """ValueError when `mode` is unknown or does not fit the dataset's kind of input."""
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation '{mode}', expected one of {', '.join(AUGMENTATIONS)}")
    if event and mode in IMAGE_AUGMENTATIONS:
        raise ValueError(f"augmentation '{mode}' is for static images; {dataset} holds event frames "
                         f"(use {' or '.join(EVENT_AUGMENTATIONS)})")
    if not event and mode in EVENT_AUGMENTATIONS:
        raise ValueError(f"augmentation '{mode}' is for event frames; {dataset} holds static images "
                         f"(use {' or '.join(IMAGE_AUGMENTATIONS)})")
