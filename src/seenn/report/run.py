"""What a report section reads: the report stage's declared inputs and config (`Run`), each file
read once."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from seenn.common.io import read_json
from seenn.methods.catalog import ANN, POLICY_ALONE
from seenn.report.headline import read_headline

MEASUREMENTS_PDF = "reports/seenn_measurements.pdf"


@dataclass
class Run:
    """The report stage's declared inputs (role -> path) and config, each file read once."""

    inputs: dict
    params: dict
    provenance: list[str] | None = None

    def has(self, *roles: str) -> bool:
        return all(r in self.inputs for r in roles)

    @functools.cache
    def json(self, role: str) -> dict:
        return read_json(self.inputs[role])

    @functools.cache
    def csv(self, role: str) -> pd.DataFrame:
        return pd.read_csv(self.inputs[role])

    def __hash__(self):
        return id(self)

    @functools.cached_property
    def headline(self) -> list[dict]:
        return read_headline(self.inputs["headline_csv"])


SHORT_METHODS = {ANN: "ANN (same architecture)", POLICY_ALONE: "SEENN-II policy network alone"}
