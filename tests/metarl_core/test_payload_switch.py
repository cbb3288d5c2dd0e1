"""The payload-switch figures: recovery time and steady error on synthetic error traces."""

from __future__ import annotations

import numpy as np

from metarl_core.payload_switch import SWITCH_S, recovery_time_s, summarize

RATE_HZ = 100.0
TICKS = 600


def trace(decay_s: float, steady: float = 0.02, before: float = 0.01) -> np.ndarray:
    """``before`` rad before the switch; a jump of 0.08 rad above ``steady`` decaying with
    ``decay_s`` after it."""
    t = np.arange(TICKS) / RATE_HZ
    after = steady + 0.08 * np.exp(-np.clip(t - SWITCH_S, 0.0, None) / decay_s)
    return np.where(t < SWITCH_S, before, after)


def test_recovery_time_grows_with_the_decay_time() -> None:
    fast, slow = recovery_time_s(trace(0.05), RATE_HZ), recovery_time_s(trace(0.3), RATE_HZ)
    # The 5 mrad floor beats 20 % of 0.02 rad: 0.08·exp(-t/τ) ≤ 0.005 at t = τ·ln(16), ≈ 0.14 s
    # and 0.83 s, plus up to the 0.1 s smoothing window.
    assert 0.1 < fast < 0.3
    assert 0.8 < slow < 1.0


def test_band_is_a_fifth_of_the_steady_error_when_that_is_wider_than_the_floor() -> None:
    # Steady 0.1 rad: the band is 0.02 rad, so 0.08·exp(-t/0.3) ≤ 0.02 at t = 0.3·ln(4) ≈ 0.42 s.
    assert 0.4 < recovery_time_s(trace(0.3, steady=0.1, before=0.1), RATE_HZ) < 0.55


def test_an_error_that_settles_higher_recovers_to_its_steady_value_but_never_to_before() -> None:
    step = np.where(np.arange(TICKS) / RATE_HZ < SWITCH_S, 0.0006, 0.08)  # the fixed controller's shape
    summary = summarize(step, RATE_HZ)
    assert summary["recovery_s"] < 0.15
    assert summary["recovery_to_before_s"] == float("inf")
    back = summarize(trace(0.05, steady=0.01, before=0.01), RATE_HZ)
    assert 0.1 < back["recovery_to_before_s"] < 0.3


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
    summary = summarize(trace(0.05), RATE_HZ)
    assert abs(summary["before_switch"] - 0.01) < 1e-9
    assert abs(summary["steady_after"] - 0.02) < 1e-4
    assert summary["first_second_after"] > summary["steady_after"]


def test_an_error_below_its_steady_value_counts_as_recovered() -> None:
    errors = trace(0.05)
    t = np.arange(TICKS) / RATE_HZ
    errors[(t > SWITCH_S + 0.3) & (t < SWITCH_S + 1.0)] = 0.005  # better than steady for a while
    assert recovery_time_s(errors, RATE_HZ) < 0.3
