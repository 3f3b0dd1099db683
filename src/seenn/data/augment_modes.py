"""Names of the training augmentation modes and the kind of input each fits. Free of torch, so the
config check (run by Snakemake when it parses the workflow) stays light; `data.augment` does the work."""

from __future__ import annotations

IMAGE_AUGMENTATIONS = ("crop_flip", "autoaugment_cutout")
EVENT_AUGMENTATIONS = ("flip_roll_rotate",)
AUGMENTATIONS = ("none", *IMAGE_AUGMENTATIONS, *EVENT_AUGMENTATIONS)
EVENT_DATASETS = ("cifar10dvs",)  # datasets whose samples are event frames (DatasetSpec.event; a test checks)
STREAMED_DATASETS = ("imagenet",)  # datasets streamed from image files (data.source.ImageFileSource)
STREAMED_AUGMENTATIONS = ("none", "crop_flip")  # crop_flip there: RandomResizedCrop + flip


def check_augmentation(mode: str, dataset: str, event: bool) -> None:
    """ValueError when `mode` is unknown or does not fit the dataset's kind of input."""
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation '{mode}', expected one of {', '.join(AUGMENTATIONS)}")
    if event and mode in IMAGE_AUGMENTATIONS:
        raise ValueError(f"augmentation '{mode}' is for static images; {dataset} holds event frames "
                         f"(use {' or '.join(EVENT_AUGMENTATIONS)})")
    if dataset in STREAMED_DATASETS and mode not in STREAMED_AUGMENTATIONS:
        raise ValueError(f"augmentation '{mode}' is not available for the streamed dataset {dataset} "
                         f"(use {' or '.join(STREAMED_AUGMENTATIONS)})")
    if not event and mode in EVENT_AUGMENTATIONS:
        raise ValueError(f"augmentation '{mode}' is for event frames; {dataset} holds static images "
                         f"(use {' or '.join(IMAGE_AUGMENTATIONS)})")
