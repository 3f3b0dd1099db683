"""Every dataset by its config name (`data.name`). A dataset module exposes `SPEC` (a
data.spec.DatasetSpec) and is imported only here, so a stage that names no dataset loads none."""

from __future__ import annotations

from seenn.common.errors import SeennError
from seenn.data.spec import DatasetSpec


def registry() -> dict[str, DatasetSpec]:
    """Every dataset by its config name (`data.name`). A dataset module is imported only here, so
    a stage that names no dataset loads none of them."""
    from seenn.data import cifar, cifar10dvs, digits, imagenet

    return {m.SPEC.name: m.SPEC for m in (digits, cifar.CIFAR10, cifar.CIFAR100, cifar10dvs, imagenet)}


def get_spec(name: str) -> DatasetSpec:
    """Look a dataset up by its config name."""
    known = registry()
    if name not in known:
        raise SeennError(f"unknown dataset 'data.name: {name}'; known: {', '.join(sorted(known))}")
    return known[name]
