"""The payload-switch figures: recovery time and steady error on synthetic error traces."""

from __future__ import annotations

import numpy as np
import pytest

from sim.scenarios.payload_switch import SWITCH_S, recovery_band_rad, recovery_time_s, summarize

RATE_HZ = 100.0
TICKS = 600


def trace(decay_s: float, steady: float = 0.01, before: float = 0.01) -> np.ndarray:
    """``before`` rad before the switch; a jump of 0.08 rad above ``steady`` decaying with
    ``decay_s`` after it."""
    t = np.arange(TICKS) / RATE_HZ
    after = steady + 0.08 * np.exp(-np.clip(t - SWITCH_S, 0.0, None) / decay_s)
    return np.where(t < SWITCH_S, before, after)


def test_recovery_to_the_error_before_grows_with_the_decay_time() -> None:
    fast, slow = recovery_time_s(trace(0.05), RATE_HZ), recovery_time_s(trace(0.3), RATE_HZ)
    # Band: 20 % above the constant 0.01 rad, so 0.08·exp(-t/τ) ≤ 0.002 at t = τ·ln(40), ≈ 0.18 s and 1.1 s,
    # plus up to the 0.1 s smoothing window.
    assert 0.15 < fast < 0.3
    assert 1.05 < slow < 1.25


def test_a_controller_that_settles_high_never_recovers() -> None:
    # The fixed controller's shape, and the gradient-mode run: settled, but 1.5× higher.
    for before, after in ((0.0006, 0.08), (0.0038, 0.0057)):
        step = np.where(np.arange(TICKS) / RATE_HZ < SWITCH_S, before, after)
        summary = summarize(step, RATE_HZ)
        assert summary["recovery_s"] == float("inf")
        assert summary["recovery_to_steady_s"] < 0.15  # the secondary figure calls it settled at once
        assert summary["steady_ratio"] == pytest.approx(after / before)


def test_the_band_is_floored_by_the_errors_own_variation_before_the_switch() -> None:
    t = np.arange(TICKS) / RATE_HZ
    wandering = 0.0045 + 0.0015 * np.sin(2.0 * np.pi * t / 0.8)  # 3–6 mrad with no switch at all
    band = recovery_band_rad(wandering, RATE_HZ)
    assert band > 1.2 * np.sqrt(np.mean(wandering[50:200] ** 2))  # wider than 20 % over its RMS
    assert band == pytest.approx(1.2 * wandering[50:200].max(), rel=2e-2)
    back = np.where(t < SWITCH_S, wandering, wandering + 0.08 * np.exp(-np.clip(t - SWITCH_S, 0, None) / 0.05))
    assert recovery_time_s(back, RATE_HZ) < 0.4  # back into the same wandering: recovered
    high = np.where(t < SWITCH_S, wandering, 1.5 * wandering)
    assert recovery_time_s(high, RATE_HZ) == float("inf")


def test_the_secondary_figure_is_the_recovery_to_the_runs_own_steady_error() -> None:
    # Steady 0.1 rad: its band is 0.02 rad, so 0.08·exp(-t/0.3) ≤ 0.02 at t = 0.3·ln(4) ≈ 0.42 s.
    summary = summarize(trace(0.3, steady=0.1, before=0.1), RATE_HZ)
    assert 0.4 < summary["recovery_to_steady_s"] < 0.55
    assert 0.4 < summary["recovery_s"] < 0.55  # the same level here


def test_recovery_time_is_inf_when_the_error_never_settles() -> None:
    t = np.arange(TICKS) / RATE_HZ
    errors = trace(0.05)
    bursts = (t > SWITCH_S) & (np.sin(2.0 * np.pi * (t - SWITCH_S) / 0.6) > 0.0)  # 0.3 s on, 0.3 s off
    errors[bursts] = 0.1
    assert recovery_time_s(errors, RATE_HZ) == float("inf")


def test_a_late_bump_of_the_trajectory_is_not_slow_recovery() -> None:
    errors = trace(0.05)
    errors[-30:] *= 3.0  # after more than the dwell time inside the band
    assert recovery_time_s(errors, RATE_HZ) < 0.3


def test_summary_separates_before_and_steady_after() -> None:
    summary = summarize(trace(0.05, steady=0.02), RATE_HZ)
    assert abs(summary["before_switch"] - 0.01) < 1e-9
    assert abs(summary["steady_after"] - 0.02) < 1e-4
    assert summary["steady_ratio"] == pytest.approx(2.0, rel=1e-2)
    assert summary["first_second_after"] > summary["steady_after"]
    assert summary["recovery_s"] == float("inf")


def test_an_error_below_the_level_counts_as_recovered() -> None:
    errors = trace(0.05)
    t = np.arange(TICKS) / RATE_HZ
    errors[(t > SWITCH_S + 0.3) & (t < SWITCH_S + 1.0)] = 0.005  # better than before for a while
    assert recovery_time_s(errors, RATE_HZ) < 0.3


def test_a_switch_before_the_settling_is_refused() -> None:
    with pytest.raises(ValueError, match="error before the switch is not known"):
        recovery_band_rad(trace(0.05), RATE_HZ, switch_s=0.55)
