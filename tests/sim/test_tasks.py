"""Tasks: JSON round trip, validation messages that name the field and range, disjoint splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.tasks import SPLITS, HuskyTask, PandaTask


@pytest.mark.parametrize("task_type", [PandaTask, HuskyTask])
@pytest.mark.parametrize("split", SPLITS)
def test_sampled_tasks_are_valid_and_round_trip_through_json(task_type, split) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        task = task_type.sample(rng, split)
        task.validate()
        assert task_type.from_json(task.to_json()) == task


@given(
    mass=st.floats(0.0, 5.0),
    offset=st.tuples(*[st.floats(-0.15, 0.15)] * 3),
    damping=st.floats(0.25, 4.0),
)
@settings(max_examples=50, deadline=None)
def test_any_valid_panda_task_round_trips(mass, offset, damping) -> None:
    task = PandaTask(payload_mass_kg=mass, payload_com_offset_m=offset, joint_damping_scale=damping)
    assert PandaTask.from_json(task.to_json()) == task


@pytest.mark.parametrize(
    ("task", "field", "valid_range"),
    [
        (PandaTask(payload_mass_kg=7.0), "payload_mass_kg", "[0.0, 5.0]"),
        (PandaTask(payload_mass_kg=float("nan")), "payload_mass_kg", "[0.0, 5.0]"),
        (PandaTask(joint_friction_scale=-1.0), "joint_friction_scale", "[0.25, 4.0]"),
        (PandaTask(payload_com_offset_m=(0.0, 0.3, 0.0)), "payload_com_offset_m[y]", "[-0.15, 0.15]"),
        (HuskyTask(ground_friction=0.0), "ground_friction", "[0.05, 2.0]"),
        (HuskyTask(slope_rad=1.0), "slope_rad", "[-0.35, 0.35]"),
        (HuskyTask(motor_strength_scale=5.0), "motor_strength_scale", "[0.1, 2.0]"),
    ],
)
def test_validate_names_the_field_and_its_valid_range(task, field, valid_range) -> None:
    with pytest.raises(ValueError, match="outside") as error:
        task.validate()
    assert field in str(error.value) and valid_range in str(error.value)


def test_unknown_terrain_is_refused_with_the_valid_types() -> None:
    with pytest.raises(ValueError, match=r"terrain_type='ice'.*flat"):
        HuskyTask(terrain_type="ice").validate()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be an object"),
        ('{"payload_mass_kg": "heavy"}', "payload_mass_kg='heavy' must be a number in \\[0.0, 5.0\\]"),
        ('{"payload_mass_kg": 9}', "payload_mass_kg=9 outside \\[0.0, 5.0\\]"),
        ('{"mass": 1.0}', "unknown field"),
        ('{"payload_com_offset_m": [0.0, 0.0]}', "payload_com_offset_m"),
        ('{"type": "HuskyTask"}', "describes a HuskyTask"),
    ],
)
def test_malformed_json_is_a_value_error_that_says_what(text, message) -> None:
    with pytest.raises(ValueError, match=message):
        PandaTask.from_json(text)


def test_json_names_the_task_type() -> None:
    assert json.loads(HuskyTask().to_json())["type"] == "HuskyTask"


def test_panda_splits_are_disjoint() -> None:
    rng = np.random.default_rng(1)
    tasks = {split: [PandaTask.sample(rng, split) for _ in range(2000)] for split in SPLITS}
    for field, hole, top in [
        ("payload_mass_kg", (1.25, 1.75), 3.0),
        ("joint_damping_scale", (0.9, 1.1), 2.0),
        ("joint_friction_scale", (0.9, 1.1), 2.0),
    ]:
        values = {split: np.array([getattr(t, field) for t in tasks[split]]) for split in SPLITS}
        assert np.all((values["train"] < hole[0]) | (values["train"] > hole[1])), field
        assert np.all((values["interp"] >= hole[0]) & (values["interp"] <= hole[1])), field
        assert values["train"].max() <= top < values["extrap"].min(), field


def test_husky_splits_are_disjoint() -> None:
    rng = np.random.default_rng(2)
    tasks = {split: [HuskyTask.sample(rng, split) for _ in range(2000)] for split in SPLITS}
    train_payload = np.array([t.payload_mass_kg for t in tasks["train"]])
    interp_payload = np.array([t.payload_mass_kg for t in tasks["interp"]])
    assert np.all((train_payload < 15.0) | (train_payload > 25.0))
    assert np.all((interp_payload >= 15.0) & (interp_payload <= 25.0))
    train_terrains = {t.terrain_type for t in tasks["train"]}
    assert not train_terrains & {t.terrain_type for t in tasks["extrap"]}
    extrap_slopes = np.array([abs(t.slope_rad) for t in tasks["extrap"]])
    assert extrap_slopes.min() >= max(abs(t.slope_rad) for t in tasks["train"])
