"""Typed recipe configs: YAML → nested dataclasses, with errors that say what to fix.

A recipe config has seven sections (graph, data, teachers, signals, student,
distill, output). ``load_config`` reads a YAML file with ``yaml.safe_load`` and
builds :class:`RecipeConfig`; every key is checked against the dataclass fields,
so a typo such as ``distill.engine.epohcs`` fails at load time with the dotted
path and the closest valid key, not forty minutes into a run. ``--set a.b=c``
overrides are parsed with ``yaml.safe_load`` too, so ``--set data.train_limit=50``
is an int and ``--set teachers.names=[a,b]`` a list.

Shipped configs live in ``kgkd/recipes/configs/`` and are resolved by name
(``resolve_config_path("sentiment_transfer_quick")``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from kgkd.errors import ConfigError, ConfigValueError
from kgkd.utils.suggest import suggestion

__all__ = [
    "CONFIG_DIR",
    "DataConfig",
    "DistillConfig",
    "FeatureAlignmentConfig",
    "GraphConfig",
    "OutputConfig",
    "RecipeConfig",
    "SignalsConfig",
    "StudentConfig",
    "TeacherConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "deep_merge",
    "list_configs",
    "load_config",
    "parse_override",
    "resolve_config_path",
    "smoke_enabled",
]

#: Folder of the configs shipped with kgkd.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Other spellings of recipe config keys (did-you-mean only; a key is never silently renamed).
_KEY_ALIASES = {
    "output_dir": "dir", "out": "dir", "path": "dir", "sources": "source_domains", "targets": "target_domains",
    "held_out": "target_domains", "teachers": "names", "model": "kind", "encoder_name": "encoder",
}  # fmt: skip


# --------------------------------------------------------------------------- sections
@dataclass
class GraphConfig:
    """Which knowledge graph drives the recipe.

    ``path`` is a shipped graph name (``sentiment`` → ``graphs/sentiment.ttl``) or a
    path to a Turtle file; ``extra_turtle`` is Turtle text merged into it (how a
    notebook adds a domain without editing files).
    """

    path: str = "sentiment"
    validate: bool = True
    extra_turtle: str | None = None


@dataclass
class DataConfig:
    """Domains and sample budgets.

    ``source_domains`` carry labels (teachers' reliability is measured there and the
    student sees their labels); ``target_domains`` are held out: their labels are
    never used for training, only for the final evaluation.
    """

    source_domains: list[str] = field(default_factory=list)
    target_domains: list[str] = field(default_factory=list)
    train_limit: int | None = None
    val_limit: int | None = None
    test_limit: int | None = None
    max_length: int = 64
    image_size: int = 28
    augment: bool = False
    batch_size: int = 32


@dataclass
class TeacherConfig:
    """Which teachers (graph teacher nodes) to use and how to train missing ones.

    ``train_if_missing`` trains a teacher whose checkpoint is absent from the cache
    folder; with it off a missing checkpoint is an error naming the command that
    creates it. ``train`` is handed to ``kgkd.models.train_teacher`` (epochs, lr,
    limit, max_length, trainable_layers, ...). ``features`` are the teacher features
    cached next to the logits (only feature losses need them).
    """

    names: list[str] = field(default_factory=list)
    train_if_missing: bool = True
    train: dict[str, Any] = field(default_factory=dict)
    cache_dtype: Literal["float16", "float32"] = "float16"
    features: list[str] = field(default_factory=list)
    batch_size: int = 64


@dataclass
class SignalsConfig:
    """How teacher weights are fitted from the graph.

    ``weighting`` picks the teacher weighting the student is distilled under:
    ``kg`` (the fitted graph signals) or a baseline name (uniform, confidence,
    best_single, oracle, no_graph). ``baselines`` are the weightings the report
    compares against. ``params`` go to ``kgkd.signals.fit_signals``.
    """

    encoder: str = "sage"
    epochs: int = 200
    weighting: str = "kg"
    baselines: list[str] = field(default_factory=lambda: ["uniform", "confidence", "best_single"])
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudentConfig:
    """The compact student.

    ``kind`` is ``text`` or ``digit``; ``params`` its constructor kwargs. ``label_set``
    names the graph label set the student predicts (default: the graph's student
    node, else the one label set every domain shares).
    """

    kind: Literal["text", "digit"] = "text"
    label_set: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeatureAlignmentConfig:
    """Optional KG-weighted feature alignment added to the distillation loss.

    ``weight`` 0 turns it off (the default). Otherwise the loss becomes
    ``distill + weight · feature``: projected student features regress every teacher's
    cached features (``pairs``, ``student_feature:teacher_feature``; the teacher side is
    added to ``teachers.features`` automatically), each teacher weighted per domain by
    the fitted signals' alignment weights. ``loss`` is ``mse`` or ``cosine``;
    ``projector`` ``linear`` or ``film`` (FiLM-conditioned on the KG domain embedding).
    """

    weight: float = 0.0
    loss: Literal["mse", "cosine"] = "mse"
    projector: Literal["linear", "film", "mlp"] = "linear"
    pairs: list[str] = field(default_factory=lambda: ["pooled"])


@dataclass
class DistillConfig:
    """The distillation loss and the engine settings.

    ``engine`` is the engine's own ``EngineConfig`` as a mapping; it is checked with
    ``EngineConfig.from_dict`` when the config is loaded, so its typos fail early too.
    ``feature_alignment`` (off by default) adds KG-weighted feature alignment.
    """

    loss: str = "combined"
    loss_params: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)
    feature_alignment: FeatureAlignmentConfig = field(default_factory=FeatureAlignmentConfig)

    def engine_config(self) -> Any:
        """Build the engine's ``EngineConfig`` from ``engine`` (errors name ``distill.engine``)."""
        from kgkd.distill.config import EngineConfig

        try:
            return EngineConfig.from_dict(dict(self.engine))
        except ConfigError as exc:
            raise ConfigError(f"distill.engine: {exc}") from None


@dataclass
class OutputConfig:
    """Where the run writes its student, metrics, plots and graph.

    ``dir`` must be new or empty; ``overwrite`` lets a run replace kgkd's own outputs in
    it (the folder's other files are kept).
    """

    dir: str = "runs/{name}"
    plots: bool = True
    show_progress: bool = True
    overwrite: bool = False


@dataclass
class RecipeConfig:
    """A whole recipe run: which recipe, its seed and the seven sections."""

    name: str = "recipe"
    recipe: str = "sentiment_transfer"
    description: str = ""
    seed: int = 0
    device: str = "auto"
    graph: GraphConfig = field(default_factory=GraphConfig)
    data: DataConfig = field(default_factory=DataConfig)
    teachers: TeacherConfig = field(default_factory=TeacherConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    smoke: dict[str, Any] = field(default_factory=dict)

    def output_dir(self) -> Path:
        """The output folder with ``{name}`` filled in."""
        return Path(self.output.dir.format(name=self.name))


# --------------------------------------------------------------------------- building
C = TypeVar("C")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it (ints widen to float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigValueError(f"config key '{key}' must be a mapping of {tp.__name__} settings, got {_describe(value)}", key)
        return _build(tp, value, key)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigValueError(f"config key '{key}' must be {_type_name(tp)}, got {_describe(value)}", key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            hint = suggestion(value, allowed)
            raise ConfigValueError(f"config key '{key}' must be one of {list(allowed)}, got {value!r}.{hint}", key)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigValueError(f"config key '{key}' must be a list ({_type_name(tp)}), got {_describe(value)}", key)
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigValueError(f"config key '{key}' must be a mapping, got {_describe(value)}", key)
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigValueError(f"config key '{key}' must be true or false, got {_describe(value)}", key)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigValueError(f"config key '{key}' must be an integer, got {_describe(value)}", key)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigValueError(f"config key '{key}' must be a number, got {_describe(value)}", key)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigValueError(f"config key '{key}' must be a string, got {_describe(value)}", key)
        return value
    raise ConfigError(f"config key '{key}' has an unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls: type[C], data: Mapping[str, Any], prefix: str = "") -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys get the closest valid key."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            hint = suggestion(key, names, _KEY_ALIASES, cutoff=0.5, prefix=f"{prefix}." if prefix else "")
            raise ConfigValueError(
                f"unknown config key '{dotted}'.{hint} Valid keys"
                f"{' under ' + repr(prefix) if prefix else ''}: {', '.join(names)}",
                dotted,
            )
        kwargs[key] = _coerce(value, hints[key], dotted)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any], *, check_engine: bool = True) -> RecipeConfig:
    """Build and check a :class:`RecipeConfig` from a plain mapping."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a recipe config must be a mapping of sections, got {_describe(data)}")
    cfg = _build(RecipeConfig, data)
    if check_engine:
        try:
            cfg.distill.engine_config()
        except ImportError:  # engine not installed: checked again when the run starts
            pass
        except ConfigError as exc:
            raise ConfigValueError(str(exc), _engine_culprit(cfg.distill.engine)) from None
    return cfg


def _engine_culprit(engine: Mapping[str, Any]) -> str:
    """The dotted key of the ``distill.engine`` option that makes it invalid (the section if several)."""
    from kgkd.distill.config import EngineConfig

    names = {f.name for f in dataclasses.fields(EngineConfig)}
    for key in engine:
        if key not in names:
            return f"distill.engine.{key}"
    for key in engine:  # the one option whose removal makes the rest valid
        try:
            EngineConfig.from_dict({k: v for k, v in engine.items() if k != key})
        except ConfigError:
            continue
        return f"distill.engine.{key}"
    return "distill.engine"


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain nested dicts (what ``metrics.json`` records)."""
    return dataclasses.asdict(cfg)


# --------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=c`` into (['a', 'b'], parsed c); c is read with ``yaml.safe_load``."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value (e.g. distill.engine.epochs=2)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key; write it as section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc.__class__.__name__}); quote it") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to a raw config mapping (in place; returned for chaining)."""
    for text in overrides:
        path, value = parse_override(text)
        node: Any = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override '{text}': '{'.'.join(path[: i + 1])}' is {_describe(child)}, not a section"
                )
            node = child
        node[path[-1]] = value
    return data


# --------------------------------------------------------------------------- files
def list_configs() -> list[str]:
    """Names of the shipped configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped config name (``digits_transfer``) or a YAML path → an existing path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist; shipped configs: {', '.join(list_configs())}")
        return path
    shipped = CONFIG_DIR / f"{text}.yaml"
    if shipped.is_file():
        return shipped
    hint = suggestion(text, list_configs())
    raise ConfigError(
        f"unknown config '{text}'.{hint} Give a shipped name ({', '.join(list_configs())}) or a .yaml path"
    )


def smoke_enabled() -> bool:
    """True when env ``KGKD_QUICK=1`` asks for the tiny smoke scale (tests, notebooks)."""
    return os.environ.get("KGKD_QUICK", "").strip().lower() in ("1", "true", "yes", "on")


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into ``base`` recursively (in place; returned for chaining)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = _deep_copy(value) if isinstance(value, Mapping) else value
    return base


def load_config(
    name_or_path: str | os.PathLike[str] | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
) -> RecipeConfig:
    """Load a shipped config name, a YAML path or a mapping, apply overrides, check it.

    Order: file → its ``smoke:`` block (when ``smoke`` is true, or by default when env
    ``KGKD_QUICK=1``) → ``--set`` overrides. The ``smoke:`` block is a partial config
    shrinking the run to seconds (what the test suite and notebooks' small mode use).
    """
    origins: dict[str, str] = {}  # dotted key → where its value came from (for error messages)
    if isinstance(name_or_path, Mapping):
        data = _deep_copy(name_or_path)
        source = "<mapping>"
    else:
        path = resolve_config_path(name_or_path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file '{path}' is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"config file '{path}'{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file '{path}' must hold a mapping of sections, got {type(data).__name__}")
        origins = {k: f"config file '{path}' line {n}" for k, n in _yaml_key_lines(text).items()}
    use_smoke = smoke_enabled() if smoke is None else smoke
    smoke_block = data.get("smoke") or {}
    if use_smoke and isinstance(smoke_block, Mapping):
        deep_merge(data, smoke_block)
        for key, where in list(origins.items()):
            if key.startswith("smoke."):
                origins[key[len("smoke.") :]] = f"{where} (smoke: block)"
    apply_overrides(data, overrides)
    for text_ in overrides:
        dotted = ".".join(parse_override(text_)[0])
        origins = {k: v for k, v in origins.items() if not k.startswith(dotted + ".")}
        origins[dotted] = f"--set {text_}"
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        where = _origin(origins, getattr(exc, "key", None)) or source
        raise ConfigError(f"{where}: {exc}") from None


def _yaml_key_lines(text: str) -> dict[str, int]:
    """Dotted key → 1-based line of that key in the YAML ``text`` (empty when it does not compose)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
                    lines[dotted] = key.start_mark.line + 1
                    walk(value, dotted)

    walk(root, "")
    return lines


def _origin(origins: Mapping[str, str], key: str | None) -> str | None:
    """Where the value of dotted ``key`` (or its nearest parent) came from."""
    if not key:
        return None
    parts = re.sub(r"\[\d+\]", "", key).split(".")
    for n in range(len(parts), 0, -1):
        where = origins.get(".".join(parts[:n]))
        if where is not None:
            return where
    return None


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else (list(v) if isinstance(v, list) else v) for k, v in data.items()}
