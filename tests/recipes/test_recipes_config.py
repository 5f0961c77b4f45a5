"""Recipe configs: shipped files load, typos and wrong types fail with the key path, --set works."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgkd.errors import ConfigError
from kgkd.recipes.config import (
    RecipeConfig,
    apply_overrides,
    list_configs,
    load_config,
    parse_override,
    resolve_config_path,
)

SHIPPED = (
    "sentiment_transfer",
    "sentiment_transfer_quick",
    "digits_transfer",
    "digits_transfer_quick",
    "digits_fashion_amalgamation",
    "digits_fashion_amalgamation_quick",
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_in_full_and_smoke_scale(name: str) -> None:
    assert name in list_configs()
    full = load_config(name, smoke=False)
    smoke = load_config(name, smoke=True)
    assert isinstance(full, RecipeConfig) and full.name == name
    assert full.teachers.names, "every recipe names its teachers"
    assert full.data.source_domains, "every recipe has labelled source domains"
    # the engine section is a valid EngineConfig and smoke scale is not bigger than the full run
    assert smoke.distill.engine_config().epochs <= full.distill.engine_config().epochs
    assert (smoke.data.train_limit or 10**9) <= (full.data.train_limit or 10**9)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_unknown_nested_key_names_dotted_path_and_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "data:\n  source_domians: [amazon]\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.source_domians'.*Did you mean 'data\.source_domains'"):
        load_config(path)


def test_unknown_top_level_key_suggests_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'teachres'.*Did you mean 'teachers'"):
        load_config(_write(tmp_path, "teachres: {names: [a]}\n"))


def test_engine_typo_is_reported_under_distill_engine(tmp_path: Path) -> None:
    path = _write(tmp_path, "distill:\n  engine: {epohcs: 3}\n")
    with pytest.raises(ConfigError, match=r"distill\.engine.*'epohcs'.*Did you mean 'epochs'"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("data:\n  train_limit: lots\n", r"'data\.train_limit' must be int"),
        ("data:\n  source_domains: amazon\n", r"'data\.source_domains' must be a list"),
        ("seed: 1.5\n", r"'seed' must be an integer"),
        ("output:\n  plots: 'yes'\n", r"'output\.plots' must be true or false"),
        ("student:\n  kind: tetx\n", (r"'student\.kind': unknown student 'tetx': not a preset .*architecture "
         r"\(bert, digit, static, text\).*Did you mean 'text'")),
        ("teachers: [a, b]\n", r"'teachers' must be a mapping"),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(_write(tmp_path, text))


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "data:\n  train_limit: 3\n  bad: [unclosed\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml' line \d+ is not valid YAML"):
        load_config(path)


def test_set_overrides_are_parsed_as_yaml_and_validated() -> None:
    cfg = load_config(
        "sentiment_transfer_quick",
        ["data.train_limit=17", "teachers.names=[teacher_imdb]", "distill.engine.lr=0.01", "output.dir=/tmp/x"],
        smoke=False,
    )
    assert cfg.data.train_limit == 17
    assert cfg.teachers.names == ["teacher_imdb"]
    assert cfg.distill.engine_config().lr == pytest.approx(0.01)
    assert cfg.output_dir() == Path("/tmp/x")
    with pytest.raises(ConfigError, match=r"'data\.train_limit' must be int"):
        load_config("sentiment_transfer_quick", ["data.train_limit=many"])
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.trian_limit'.*'data\.train_limit'"):
        load_config("sentiment_transfer_quick", ["data.trian_limit=3"])


def test_smoke_block_applies_before_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGKD_QUICK", "1")
    smoke = load_config("sentiment_transfer_quick")
    assert smoke.data.train_limit == load_config("sentiment_transfer_quick", smoke=True).data.train_limit
    assert load_config("sentiment_transfer_quick", ["data.train_limit=5"]).data.train_limit == 5
    monkeypatch.setenv("KGKD_QUICK", "0")
    assert load_config("sentiment_transfer_quick").data.train_limit == 200


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match=r"must look like key\.path=value"):
        parse_override("data.train_limit")
    with pytest.raises(ConfigError, match=r"'seed' is 0 \(int\), not a section"):
        apply_overrides({"seed": 0}, ["seed.x=1"])


def test_resolve_unknown_name_suggests_shipped() -> None:
    with pytest.raises(ConfigError, match=r"unknown config 'digits_transfr'.*Did you mean 'digits_transfer'"):
        resolve_config_path("digits_transfr")
    with pytest.raises(ConfigError, match=r"config file 'nope\.yaml' does not exist"):
        resolve_config_path("nope.yaml")


def test_engine_section_is_built_once_as_a_typed_engine_config() -> None:
    from kgkd.distill.config import EngineConfig
    from kgkd.recipes.config import config_to_dict

    cfg = load_config("digits_transfer_quick", ["distill.engine.epochs=2"], smoke=False)
    assert isinstance(cfg.distill.engine, EngineConfig)
    assert cfg.distill.engine_config() is cfg.distill.engine  # the stored object, not a rebuild
    assert cfg.distill.engine.epochs == 2 and cfg.distill.engine.temperature == 2.0
    # serialised in full for metrics.json, and loads back to the same config
    data = config_to_dict(cfg)
    assert data["distill"]["engine"]["epochs"] == 2 and data["distill"]["engine"]["alpha"] == 0.5
    assert load_config(data, smoke=False).distill.engine == cfg.distill.engine


@pytest.mark.parametrize("key", ["temperature", "alpha"])
def test_loss_params_may_not_own_temperature_or_alpha(tmp_path: Path, key: str) -> None:
    path = _write(tmp_path, f"distill:\n  loss_params:\n    kd: {{name: multi_teacher_kd, {key}: 2.0}}\n")
    pattern = rf"line 3: config key 'distill\.loss_params\.kd\.{key}': losses take no {key}; .*Set distill\.engine\.{key}"
    with pytest.raises(ConfigError, match=pattern):
        load_config(path)
    with pytest.raises(ConfigError, match=rf"^--set distill\.loss_params\.{key}=3: .*distill\.engine\.{key}"):
        load_config("digits_transfer_quick", [f"distill.loss_params.{key}=3"])


def test_student_kind_comes_from_the_registry() -> None:
    from kgkd.models.students import STUDENT_PRESETS, STUDENTS

    for kind in [*STUDENTS.names(), *STUDENT_PRESETS.names()]:  # every architecture and preset is a valid kind
        assert load_config("digits_transfer_quick", [f"student.kind={kind}"]).student.kind == kind
    with pytest.raises(ConfigError, match=r"^--set student\.kind=digt: .*'student\.kind'.*Did you mean 'digit'"):
        load_config("digits_transfer_quick", ["student.kind=digt"])
