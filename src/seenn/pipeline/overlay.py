"""`seenn config use [OVERLAY]`: write params.yaml as the defaults with an overlay applied.

config/defaults.yaml holds every key, with the comments that explain them; an overlay (the paper
rows in config/paper/) holds only the values it changes. The result always starts from the
defaults, never from the params.yaml of the last call: mappings merge key by key, any other value
(a list included) replaces the default whole, and a key the defaults lack is an error. The
overlay's values are written into the commented defaults in place (ruamel.yaml round trip), each
marked `# overlay (default ...)`, so params.yaml stays readable; the overlay's leading comment
block replaces the defaults' at the top, its other comments stay in the overlay file. It also
records where it came from under `config_source` (the files and their sha256, and the digest of
the values written), which only the report reads: it names the overlay and flags a params.yaml
edited by hand since."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import yaml

from seenn.common.config_source import SOURCE_KEY, config_digest
from seenn.common.errors import SeennError
from seenn.common.io import sha256_file, write_text
from seenn.pipeline.config import DEFAULT_CONFIG, StrictLoader, read_yaml, validate_config

DEFAULTS = "config/defaults.yaml"
COMMENT_COLUMN = 24  # where the defaults' end-of-line comments start


def _name(path: Path, root: Path) -> str:
    """The path as recorded in params.yaml: relative to the project root when inside it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _read_mapping(path: Path, what: str) -> dict:
    raw = read_yaml(path)  # strict: UTF-8, no duplicate key; one-line errors naming the file
    if not isinstance(raw, dict) or not raw:
        got = "nothing" if raw is None or raw == {} else f"a {type(raw).__name__}"
        raise SeennError(f"{what} {path} must hold a mapping of config keys, got {got}")
    return raw


def merge(defaults: dict, overlay: dict, overlay_name: str, defaults_name: str, prefix: str = "") -> dict:
    """`defaults` with `overlay` applied: mappings merge key by key, other values replace whole."""
    out = dict(defaults)
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            raise SeennError(f"overlay {overlay_name}: key '{dotted}' is not in {defaults_name} (an overlay changes "
                             f"existing keys only; allowed here: {', '.join(map(str, defaults))})")
        if isinstance(defaults[key], dict) != isinstance(value, dict):
            want = "a section of keys" if isinstance(defaults[key], dict) else "a single value"
            raise SeennError(f"overlay {overlay_name}: '{dotted}' is {want} in {defaults_name}, got "
                             f"{json.dumps(value, default=str)}")
        out[key] = (merge(defaults[key], value, overlay_name, defaults_name, f"{dotted}.")
                    if isinstance(value, dict) else value)
    return out


def _split_header(text: str) -> tuple[list[str], str]:
    """The file's leading comment lines (and blank lines after them), and the rest."""
    lines = text.splitlines(keepends=True)
    n = 0
    while n < len(lines) and (lines[n].startswith("#") or not lines[n].strip()):
        n += 1
    header = [ln.rstrip("\n") for ln in lines[:n] if ln.strip()]
    return header, "".join(lines[n:])


def _round_trip():
    from ruamel.yaml import YAML

    rt = YAML()  # round trip: comments, flow lists, quotes and number spellings kept
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a long line
    return rt


def _flow(value: Any) -> str:
    """A default value as it reads in the overlay marker: one short line of YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _mark(node, key: str, default: Any) -> None:
    """Mark `node[key]` as set by the overlay, before the defaults' own comment on it (kept: it
    explains the key) and keeping the blank lines that follow it."""
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    marker = f"# overlay (default {_flow(default)})"
    old = node.ca.items.get(key, [None, None, None, None])[2]
    if old is not None and old.value.lstrip(" ").startswith("#"):
        text = old.value.lstrip(" ")[1:].lstrip(" ")
        value, column = f"{marker}; {text}", old.column
    else:  # no comment: a line end and perhaps blank lines
        value, column = marker + (old.value if old is not None else "\n"), COMMENT_COLUMN
    value = value if value.endswith("\n") else value + "\n"
    entry = list(node.ca.items.get(key, [None, None, None, None]))
    entry[2] = CommentToken(value, CommentMark(column), None)
    node.ca.items[key] = entry
    if isinstance(node[key], CommentedSeq):
        node[key].ca.comment = None  # a flow list may carry its line's comment itself: the one above rules


def _apply(node, overlay_node, defaults: dict, overlay: dict) -> None:
    """Write the overlay's changed values into the round-trip tree of the defaults, in place."""
    from ruamel.yaml.comments import CommentedSeq

    for key in overlay:
        if isinstance(overlay[key], dict):
            _apply(node[key], overlay_node[key], defaults[key], overlay[key])
            continue
        if overlay[key] == defaults[key] and type(overlay[key]) is type(defaults[key]):
            continue  # the default already: nothing to mark
        old, new = node[key], overlay_node[key]
        if isinstance(new, CommentedSeq):
            if isinstance(old, CommentedSeq) and old.fa.flow_style():
                new.fa.set_flow_style()
            if isinstance(old, CommentedSeq) and old.ca.comment and len(old.ca.comment) > 1:
                new.ca.comment = [None, old.ca.comment[1]]  # the blank line after the list
        node[key] = new
        _mark(node, key, defaults[key])


def _source_block(source: dict) -> str:
    return "\n".join([
        f"{SOURCE_KEY}:{' ' * (COMMENT_COLUMN - len(SOURCE_KEY) - 1)}# written by `seenn config use`; only the report reads it",
        *(f"  {k}: {'null' if v is None else json.dumps(v)}" for k, v in source.items()),
    ]) + "\n"


def compose(overlay: str | Path | None = None, defaults: str | Path = DEFAULTS, root: str | Path | None = None) -> str:
    """The text of params.yaml: `defaults` with `overlay` applied (validated), and its record.

    Paths are recorded relative to `root` (the working directory by default)."""
    root = Path.cwd() if root is None else Path(root)
    defaults_path = Path(defaults)
    defaults_name = _name(defaults_path, root)
    base = _read_mapping(defaults_path, "defaults file")
    if SOURCE_KEY in base:
        raise SeennError(f"defaults file {defaults_path}: '{SOURCE_KEY}' is written by `seenn config use`, not read "
                         f"from the defaults: remove it")
    header, body = _split_header(defaults_path.read_text(encoding="utf-8"))
    rt = _round_trip()
    tree = rt.load(body)
    values, source = base, {"defaults": defaults_name, "defaults_sha256": sha256_file(defaults_path),
                            "overlay": None, "overlay_sha256": None}
    if overlay is not None:
        overlay_path = Path(overlay)
        overlay_name = _name(overlay_path, root)
        changes = _read_mapping(overlay_path, "overlay")
        values = merge(base, changes, overlay_name, defaults_name)
        overlay_header, overlay_body = _split_header(overlay_path.read_text(encoding="utf-8"))
        _apply(tree, rt.load(overlay_body), base, changes)
        header = overlay_header
        source.update(overlay=overlay_name, overlay_sha256=sha256_file(overlay_path))
    source["params_sha256"] = config_digest(values)
    where = f"{defaults_name} with the overlay {source['overlay']}" if overlay is not None else f"{defaults_name} (no overlay)"
    config = validate_config({**values, SOURCE_KEY: source}, source=where)

    buf = io.StringIO()
    rt.dump(tree, buf)
    if overlay is None:
        how = (f"edit {defaults_name} and rerun `seenn config use`, or name an\n"
               f"# overlay that changes some of its values: `seenn config use config/paper/<row>.yaml`")
    else:
        how = f"edit either file and rerun `seenn config use {source['overlay']}`"
    text = "".join([
        f"# GENERATED by `seenn config use` from {where}.\n",
        f"# To change it, {how}.\n",
        "# The report flags a params.yaml edited by hand since it was written (its values no longer match\n",
        "# config_source.params_sha256, at the end of this file).\n",
        "#\n" if header else "",
        *(ln + "\n" for ln in header),
        buf.getvalue(),
        "\n",
        _source_block(source),
    ])
    written = yaml.load(text, Loader=StrictLoader)  # what Snakemake and `seenn run` will read back
    if written != config:
        raise SeennError(f"`seenn config use` rendered {where} wrongly (the YAML read back differs): please report it")
    return text


def use(overlay: str | Path | None = None, defaults: str | Path = DEFAULTS, output: str | Path = DEFAULT_CONFIG) -> str:
    """Write `output` (params.yaml) from `defaults` and `overlay`, then dvc.yaml beside it from that
    config's stage table (so both front doors follow the config), each atomically; return its text."""
    from seenn.pipeline.table import build_stages, dvc_yaml

    text = compose(overlay, defaults)
    stages = build_stages(validate_config(yaml.load(text, Loader=StrictLoader), source=str(output)))
    write_text(output, text)
    write_text(Path(output).parent / "dvc.yaml", dvc_yaml(stages))
    return text
