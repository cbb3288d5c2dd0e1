"""``metarl bench husky-limits`` measures what the simulated Husky can do (its figures live in BENCHMARKS.md)."""

from __future__ import annotations

import argparse

import gymnasium
import pytest

from benchmarks import husky_limits_bench
from sim.husky_terrain import HUSKY
from sim.tasks import HuskyTask


@pytest.fixture(scope="module")
def control_env():
    env = gymnasium.make("metarl/HuskyTerrain-v0", episode_duration_s=2.0)
    yield env
    env.close()


def test_full_effort_on_flat_ground_reaches_the_wheel_speed_limit(control_env) -> None:
    limits = husky_limits_bench.task_limits(control_env, "interp", 0, HuskyTask(), [husky_limits_bench.BASELINE_GAINS])
    assert limits.full_effort_m_s == pytest.approx(HUSKY.action_high[0] * HUSKY.wheel_radius_m, rel=0.05)
    assert limits.reachable
    assert 0.0 < limits.baseline.rmse_m_s < 0.3


def test_a_steep_slippery_climb_with_weak_motors_is_unreachable(control_env) -> None:
    climb = HuskyTask(ground_friction=0.2, slope_rad=0.25, payload_mass_kg=80.0, motor_strength_scale=0.3)
    limits = husky_limits_bench.task_limits(control_env, "extrap", 0, climb, [husky_limits_bench.BASELINE_GAINS])
    assert limits.full_effort_m_s < 0.1 <= limits.fastest_reference_m_s
    assert not limits.reachable
    assert limits.baseline.torque_limited > 0.5


def test_the_section_marks_the_eval_tasks_full_effort_cannot_track() -> None:
    args = argparse.Namespace(eval_seeds=1, splits=["extrap"], gains=["1,2", "3,10"], patch_frictions=[1.8])
    section = husky_limits_bench.run(args)
    rows = [line for line in section.splitlines() if line.startswith("| 0 | bumps")]
    assert len(rows) == 2  # the two heaviest-payload tasks of evaluation seed 0, as metarl eval tracks on
    # Evaluation seed 0's second control task is a 0.22 rad climb on friction 0.22 with half-strength motors.
    assert "slope +0.22" in rows[1] and "**no**" in rows[1]
    patch = next(line for line in section.splitlines() if line.startswith("| 1.8 |"))
    before, steady_after = (float(cell) for cell in patch.split("|")[2:4])
    assert steady_after > 2 * before  # the patch's turn needs more torque than the motors have
    assert "`metarl bench husky-limits --eval-seeds 1 --splits extrap --gains 1,2 3,10" in section


@pytest.mark.parametrize("gains", ["1", "a,b", "1,-2", "nan,1"])
def test_malformed_gains_are_refused(gains: str) -> None:
    with pytest.raises(ValueError, match="--gains"):
        husky_limits_bench._gains([gains])
