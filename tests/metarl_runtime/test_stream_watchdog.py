"""Per-stream watchdog and stamp policy: no single message can lock a stream out."""

from __future__ import annotations

import math

import pytest

from metarl_runtime.stream_watchdog import StampPolicy, StampRejected, StreamWatchdog

NOW_S = 1000.0


def test_a_future_stamp_is_refused_and_does_not_poison_later_messages() -> None:
    policy = StampPolicy(future_tolerance_s=0.5)
    policy.admit("joint_states", NOW_S - 0.01, NOW_S)
    with pytest.raises(StampRejected) as error:
        policy.admit("joint_states", NOW_S + 3600.0, NOW_S)
    assert error.value.reason == "future_stamp"
    assert policy.admit("joint_states", NOW_S, NOW_S).stamp_s == NOW_S, "the next honest stamp passes"


def test_a_small_step_back_is_out_of_order_and_a_large_one_a_clock_restart() -> None:
    policy = StampPolicy(clock_restart_s=1.0)
    policy.admit("reference", 500.0, NOW_S)
    with pytest.raises(StampRejected) as error:
        policy.admit("reference", 499.5, NOW_S)
    assert error.value.reason == "out_of_order_stamp"
    verdict = policy.admit("reference", 1.0, NOW_S)  # the driver restarted its clock
    assert (verdict.stamp_s, verdict.note) == (1.0, "clock_restart")
    assert policy.admit("reference", 1.01, NOW_S).note == "", "after a restart the new clock is followed"


def test_zero_stamps_use_the_receipt_time_and_are_noted() -> None:
    policy = StampPolicy()
    first = policy.admit("imu", 0.0, NOW_S)
    second = policy.admit("imu", 0.0, NOW_S + 0.01)
    assert (first.stamp_s, first.note) == (NOW_S, "zero_stamp")
    assert second.stamp_s == NOW_S + 0.01, "each zero-stamped message is a new one"


@pytest.mark.parametrize("stamp_s", [math.nan, math.inf, -1.0])
def test_impossible_stamps_are_refused(stamp_s: float) -> None:
    with pytest.raises(StampRejected) as error:
        StampPolicy().admit("odom", stamp_s, NOW_S)
    assert error.value.reason == "bad_stamp"


def test_forget_clears_every_stream() -> None:
    policy = StampPolicy()
    policy.admit("joint_states", 900.0, NOW_S)
    policy.forget()
    assert policy.admit("joint_states", 899.5, NOW_S).stamp_s == 899.5


def test_each_stream_goes_stale_on_its_own_timeout() -> None:
    watchdog = StreamWatchdog({"joint_states": 0.1, "reference": 0.5})
    assert watchdog.stale(0.0) == ["joint_states", "reference"], "never heard: stale"
    watchdog.valid("joint_states", 10.0)
    watchdog.valid("reference", 10.0)
    assert watchdog.stale(10.05) == []
    watchdog.valid("reference", 10.1)  # the reference keeps coming, the joint states stopped
    assert watchdog.stale(10.2) == ["joint_states"]
    watchdog.set_timeout("joint_states", 1.0)
    assert watchdog.stale(10.2) == []


def test_bad_timeouts_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="imu"):
        StreamWatchdog({"imu": 0.0})
    with pytest.raises(KeyError, match="odom"):
        StreamWatchdog({"imu": 0.1}).set_timeout("odom", 0.1)
