"""``kgkd.recipes.prepare``: run the pipeline's stages up to a named one, and the shipped-recipe table."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgkd.errors import ConfigError
from kgkd.recipes import prepare

FAST = ["output.show_progress=false", "signals.baselines=[uniform]"]


def test_prepare_stops_after_the_named_stage(tmp_path: Path, shared_cache: Path) -> None:
    overrides = [f"output.dir={tmp_path / 'run'}", *FAST]
    ws = prepare("digits_transfer_quick", until="cache", overrides=overrides, smoke=True)
    assert list(ws.timings) == ["graph", "data", "teachers", "cache"]
    assert ws.domains == ["mnist", "uci_digits"] and ws.held_out == ["uci_digits"]
    assert set(ws.caches) == {"train", "val", "test"} and len(ws.caches["val"]) == len(ws.teachers) == 3
    # each teacher brings its own collator; nothing is fitted, no student exists yet
    assert len(ws.teacher_collates) == 3
    assert ws.signals is None and ws.student is None and ws.student_collate is None
    assert not (tmp_path / "run").exists()  # prepare writes no run folder

    ws = prepare("digits_transfer_quick", until="signals", overrides=overrides, smoke=True)
    assert ws.signals is not None and ws.weight_table is not None
    assert tuple(ws.weight_table.shape) == (2, 3)
    assert "kg_gnn" in ws.methods  # the signals stage's fit is the run's kg_gnn method


def test_prepare_names_the_stages_for_a_misspelt_one() -> None:
    with pytest.raises(ConfigError, match=r"prepare\(until='singals'\).*Did you mean 'signals'.*graph, data, teachers"):
        prepare("digits_transfer_quick", until="singals", smoke=True)


def test_shipped_recipes_come_from_one_table() -> None:
    from kgkd.recipes import RECIPES, digits_transfer, sentiment_transfer
    from kgkd.recipes.catalog import SHIPPED_RECIPES, shipped_recipe

    assert sentiment_transfer.QUICK_CONFIG == "sentiment_transfer_quick" and digits_transfer.modality == "image"
    for recipe in SHIPPED_RECIPES:
        assert RECIPES.get(recipe.name).args == (recipe,)  # registered by the pipeline, one entry per table row
    with pytest.raises(ConfigError, match=r"no shipped recipe 'digits_transfr'.*Did you mean 'digits_transfer'"):
        shipped_recipe("digits_transfr")


def test_a_student_preset_is_picked_by_name(tmp_path: Path, shared_cache: Path) -> None:
    """``student.kind`` takes a rung of the ladder; its options and the data's input size reach the student."""
    from kgkd.models.students import STUDENT_PRESETS
    from kgkd.recipes.stages import build_student

    overrides = [f"output.dir={tmp_path / 'run'}", *FAST, "student.kind=digit-fast"]
    ws = prepare("digits_transfer_quick", until="data", overrides=overrides, smoke=True)
    student = build_student(ws)
    assert student.architecture == "digit"
    assert tuple(student.config.channels) == STUDENT_PRESETS.get("digit-fast").options["channels"]
    assert student.config.stem_stride == 2 and student.config.input_size == ws.cfg.data.image_size
    assert student.label_names == tuple(ws.student_labels)
