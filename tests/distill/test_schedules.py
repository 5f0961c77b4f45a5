"""Schedules for temperature and alpha: endpoints, shapes, warmup, config errors."""

from __future__ import annotations

import itertools
import math

import pytest

from kgkd.distill.schedules import SCHEDULES, CosineSchedule, LinearSchedule, build_schedule
from kgkd.errors import ConfigError


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_endpoints_and_monotone_annealing(name: str) -> None:
    sched = build_schedule({"name": name, "start": 4.0, "end": 1.0})
    values = [sched(p / 20) for p in range(21)]
    assert values[0] == 4.0 and values[-1] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert sched(-0.5) == 4.0 and sched(1.5) == pytest.approx(1.0)  # clamped


def test_shapes_mid_way() -> None:
    assert LinearSchedule(4.0, 1.0)(0.25) == pytest.approx(3.25)
    assert CosineSchedule(4.0, 1.0)(0.5) == pytest.approx(2.5)
    assert CosineSchedule(4.0, 1.0)(0.25) == pytest.approx(
        1.0 + 3.0 * 0.5 * (1 + math.cos(math.pi * 0.25))
    )


def test_warmup_holds_start_then_anneals_over_the_rest() -> None:
    sched = build_schedule({"name": "linear", "start": 0.0, "end": 1.0, "warmup": 0.2})
    assert sched(0.1) == 0.0 and sched(0.2) == 0.0
    assert sched(0.6) == pytest.approx(0.5) and sched(1.0) == pytest.approx(1.0)


def test_constant_from_number_or_mapping() -> None:
    assert build_schedule(0.7)(0.3) == 0.7
    assert build_schedule({"value": 2.0})(0.9) == 2.0
    assert set(SCHEDULES.names()) == {"constant", "linear", "cosine"}


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown schedule 'cosin'. Did you mean 'cosine'"):
        build_schedule({"name": "cosin", "start": 1, "end": 0})
    with pytest.raises(
        ConfigError, match="temperature: schedule 'linear' has no option 'ende'. Did you mean 'end'"
    ):
        build_schedule({"name": "linear", "start": 1, "ende": 0}, what="temperature")
    with pytest.raises(ConfigError, match="alpha: schedule 'linear' needs option\\(s\\) start"):
        build_schedule({"name": "linear", "end": 0}, what="alpha")
    with pytest.raises(ConfigError, match=r"warmup is a fraction of training in \[0, 1\), got 1.0"):
        LinearSchedule(1.0, 0.0, warmup=1.0)
    with pytest.raises(ConfigError, match="a schedule mapping needs 'name'"):
        build_schedule({"start": 1})
    with pytest.raises(ConfigError, match="expected a number or a mapping"):
        build_schedule("fast")
