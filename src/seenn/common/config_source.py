"""The record `seenn config use` writes at the end of params.yaml (where its values came from), and
the digest that tells whether the values were edited by hand since. Torch-free: the CLI, the
config loader and the report all read it."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

# Where params.yaml came from, written by `seenn config use` (seenn.pipeline.overlay). Only the report
# stage declares it, so regenerating params.yaml from another defaults file reruns the report alone.
SOURCE_KEY = "config_source"


def config_digest(config: Mapping[str, Any]) -> str:
    """sha256 of every value of the config but its provenance record (canonical JSON: key order,
    comments and number spelling do not count). `seenn config use` records it in params.yaml; the
    report recomputes it to flag a file edited by hand since."""
    values = {k: v for k, v in config.items() if k != SOURCE_KEY}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def edited_by_hand(config: Mapping[str, Any]) -> bool:
    """Whether the config's values differ from those `seenn config use` recorded when it wrote them."""
    return config_digest(config) != config[SOURCE_KEY]["params_sha256"]
