"""Typed recipe configs: YAML → nested dataclasses, with errors that say what to fix.

A recipe config has seven sections (graph, data, teachers, signals, student,
distill, output). ``load_config`` reads a YAML file with ``yaml.safe_load`` and
builds :class:`RecipeConfig` with :func:`kgkd.utils.typed_config.from_mapping`; every
key is checked against the dataclass fields, so a typo such as ``distill.engine.epohcs``
fails at load time with the dotted path and the closest valid key, not forty minutes
into a run. ``distill.engine`` becomes the engine's typed ``EngineConfig`` right here,
once; the run hands that object on. ``--set a.b=c``
overrides are parsed with ``yaml.safe_load`` too, so ``--set data.train_limit=50``
is an int and ``--set teachers.names=[a,b]`` a list.

Shipped configs live in ``kgkd/recipes/configs/`` and are resolved by name
(``resolve_config_path("sentiment_transfer_quick")``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kgkd.distill.config import EngineConfig
from kgkd.errors import ConfigError, ConfigValueError
from kgkd.utils.suggest import suggestion
from kgkd.utils.typed_config import describe, from_mapping

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

    ``kind`` is a student preset of the ladder (``kgkd.models.students.STUDENT_PRESETS``:
    ``text-tiny``, ``text-small``, ``digit-fast``, ...) or an architecture registered in
    ``STUDENTS`` (``text``, ``bert``, ``digit``); checked at load time. ``params`` are its config
    fields (overriding the preset's).
    ``label_set`` names the graph label set the student predicts (default: the graph's
    student node, else the one label set every domain shares).
    """

    kind: str = "text"
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

    ``engine`` is the engine's own typed :class:`~kgkd.distill.config.EngineConfig`,
    built and validated once when the config is loaded (errors name
    ``distill.engine.<key>``); it is the single owner of temperature and α, so
    ``loss_params`` may not set them. ``feature_alignment`` (off by default) adds
    KG-weighted feature alignment.
    """

    loss: str = "combined"
    loss_params: dict[str, Any] = field(default_factory=dict)
    engine: EngineConfig = field(default_factory=EngineConfig)
    feature_alignment: FeatureAlignmentConfig = field(default_factory=FeatureAlignmentConfig)

    def engine_config(self) -> EngineConfig:
        """The engine's ``EngineConfig`` (built once at load time; not rebuilt)."""
        return self.engine


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
#: Loss options owned by the engine's schedule (``distill.engine.<key>``), never by a loss.
_ENGINE_OWNED = ("temperature", "alpha")


def config_from_dict(data: Mapping[str, Any]) -> RecipeConfig:
    """Build and check a :class:`RecipeConfig` from a plain mapping."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a recipe config must be a mapping of sections, got {describe(data)}")
    cfg = from_mapping(RecipeConfig, data, aliases=_KEY_ALIASES)
    _check_student_kind(cfg.student.kind)
    _check_loss_params(cfg.distill.loss_params, "distill.loss_params")
    return cfg


def _check_student_kind(kind: str) -> None:
    """``student.kind`` must name a preset (``STUDENT_PRESETS``) or an architecture (``STUDENTS``)."""
    from kgkd.models.students import check_student_kind

    try:
        check_student_kind(kind)
    except ConfigError as exc:
        raise ConfigValueError(f"config key 'student.kind': {exc}", "student.kind") from None


def _check_loss_params(node: Any, key: str) -> None:
    """Refuse ``temperature`` / ``alpha`` anywhere in the loss options: the engine schedules them."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for name, value in items:
        dotted = f"{key}.{name}" if isinstance(node, Mapping) else f"{key}[{name}]"
        if isinstance(node, Mapping) and name in _ENGINE_OWNED:
            raise ConfigValueError(
                f"config key '{dotted}': losses take no {name}; the engine's schedule owns it. "
                f"Set distill.engine.{name} (and {name}_end / {name}_schedule to anneal it) instead",
                dotted,
            )
        _check_loss_params(value, dotted)


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
                    f"override '{text}': '{'.'.join(path[: i + 1])}' is {describe(child)}, not a section"
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
