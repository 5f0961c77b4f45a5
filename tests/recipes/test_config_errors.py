"""Config errors say where the bad value came from, and did-you-mean knows aliases and typos."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgkd.cli import main
from kgkd.errors import ConfigError
from kgkd.recipes.config import load_config
from kgkd.utils.registry import Registry
from kgkd.utils.suggest import did_you_mean, edit_distance

ENGINE_KEYS = ["epochs", "batch_size", "lr", "weight_decay", "warmup_steps", "temperature", "temperature_end",
               "temperature_schedule", "seed", "device", "amp", "early_stopping_patience", "early_stopping_mode"]  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("learning_rat", "lr"),  # through the alias learning_rate
        ("Learning-Rate", "lr"),
        ("epohcs", "epochs"),  # a swap of two letters is one edit
        ("epoch", "epochs"),
        ("btach_size", "batch_size"),
        ("warmup", "warmup_steps"),  # a whole-word prefix
        ("temp", "temperature"),  # ties go to the shorter name
        ("patience", "early_stopping_patience"),
        ("zzz", None),
    ],
)
def test_did_you_mean(word: str, expected: str | None) -> None:
    aliases = {"learning_rate": "lr", "patience": "early_stopping_patience", "nonsense": "not_a_key"}
    assert did_you_mean(word, ENGINE_KEYS, aliases) == expected


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("epohcs", "epochs") == 1
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3


def test_registry_uses_aliases() -> None:
    reg: Registry[int] = Registry("optimizer", aliases={"adam_w": "adamw"})
    reg.register("adamw")(1)
    reg.register("sgd")(2)
    with pytest.raises(ConfigError, match="unknown optimizer 'AdamW_'. Did you mean 'adamw'"):
        reg.get("AdamW_")


def test_set_override_is_named_as_the_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "digits_transfer_quick", "--set", "distill.engine.learning_rat=0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kgkd: error: --set distill.engine.learning_rat=0.01: ")
    assert "unknown engine config key 'learning_rat'. Did you mean 'lr'?" in err
    assert len(err.splitlines()) == 1


def test_yaml_file_and_line_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nrecipe: digits_transfer\ndistill:\n  engine:\n    epochs: 2\n    learning_rat: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"config file '{path}' line 6: ")
    assert "Did you mean 'lr'?" in str(info.value)


def test_bad_value_names_its_line_or_its_override(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nrecipe: digits_transfer\ndata:\n  source_domains: [mnist]\n  train_limit: many\n")
    with pytest.raises(ConfigError, match=r"line 5: config key 'data.train_limit' must be int \| null, got 'many'"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^--set data.train_limit=ten: config key 'data.train_limit'"):
        load_config(path, ["data.train_limit=ten"])
    # an override of a whole section is the source of every key under it
    with pytest.raises(ConfigError, match=r"^--set distill.engine=\{epochs: 0\}: distill.engine: .*epochs"):
        load_config(path, ["data.train_limit=3", "distill.engine={epochs: 0}"])


def test_engine_value_error_names_the_option_that_breaks_it(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nrecipe: digits_transfer\ndistill:\n  engine:\n    epochs: 2\n    lr: -1\n    seed: 3\n")
    with pytest.raises(ConfigError, match=r"line 6: distill.engine: engine config lr must be"):
        load_config(path)


def test_smoke_block_is_named(tmp_path: Path) -> None:
    text = "name: t\nrecipe: digits_transfer\ndata:\n  train_limit: 10\nsmoke:\n  data:\n    train_limit: lots\n"
    path = write(tmp_path, text)
    assert load_config(path, smoke=False).data.train_limit == 10
    with pytest.raises(ConfigError, match=r"line 7 \(smoke: block\): config key 'data.train_limit'"):
        load_config(path, smoke=True)


def test_unknown_section_key_gets_an_alias(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'output.output_dir'. Did you mean 'output.dir'"):
        load_config("digits_transfer_quick", ["output.output_dir=runs/x"])


def test_non_utf8_config_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(path)
