"""The controller node's tick timing as a plain unit (no ROS, no process): which joint state,
reference or timer firing ticks, and what the tick history reports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from metarl_ros.tick_schedule import HISTORY_LENGTH, TickSchedule

PERIOD_S = 0.01
WAIT_S = 0.004


def ticked(schedule: TickSchedule, now_s: float) -> None:
    """What the node does around a tick that answered the state (a command or a hold)."""
    schedule.tick_started(now_s)
    schedule.state_treated()
    schedule.tick_finished(now_s, now_s + 0.001)


def test_a_fresh_state_ticks_at_once() -> None:
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    assert schedule.state_arrived(1.0, None, now_s=0.0)
    assert schedule.untreated_state


def test_a_repeated_stamp_is_no_new_state() -> None:
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    assert schedule.state_arrived(1.0, None, now_s=0.0)
    ticked(schedule, 0.0)
    assert not schedule.state_arrived(1.0, None, now_s=1.0), "a lock-step robot resending its state"
    assert not schedule.untreated_state
    assert not schedule.timer_tick_due(1.0, any_stream_stale=False), "nothing new for the timer either"


def test_a_state_heard_before_its_in_step_reference_waits_for_it() -> None:
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    assert schedule.state_arrived(1.0, 1.0, now_s=0.0)
    ticked(schedule, 0.0)
    # The reference last came stamped like the previous state: this state's own is on its way.
    assert not schedule.state_arrived(1.01, 1.0, now_s=0.010)
    assert schedule.untreated_state and schedule.reference_awaited_since_s == 0.010
    assert not schedule.reference_arrived(1.0, now_s=0.011), "a reference for another state"
    assert schedule.reference_arrived(1.01, now_s=0.012), "its own reference: tick now"


def test_the_wait_for_a_reference_lasts_at_most_reference_wait_s() -> None:
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    schedule.state_arrived(1.0, 1.0, now_s=0.0)
    ticked(schedule, 0.0)
    schedule.state_arrived(1.01, 1.0, now_s=0.020)  # the timer may act already: last tick 20 ms ago
    assert schedule.timer_may_act(0.021)
    assert not schedule.timer_tick_due(0.020 + WAIT_S / 2, any_stream_stale=False), "its reference is still due"
    assert schedule.timer_tick_due(0.020 + 1.01 * WAIT_S, any_stream_stale=False), "waited long enough: tick"
    assert schedule.timer_tick_due(0.020, any_stream_stale=True), "a stale stream holds at once"


def test_a_tick_ends_the_wait_for_a_reference() -> None:
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    schedule.state_arrived(1.0, 1.0, now_s=0.0)
    ticked(schedule, 0.0)
    schedule.state_arrived(1.01, 1.0, now_s=0.010)
    schedule.tick_started(0.011)
    assert schedule.reference_awaited_since_s is None


def test_a_zero_reference_wait_never_waits() -> None:
    schedule = TickSchedule(PERIOD_S, 0.0)
    assert schedule.state_arrived(1.0, 1.0, now_s=0.0)
    ticked(schedule, 0.0)
    assert schedule.state_arrived(1.01, 1.0, now_s=0.010)
    assert schedule.reference_awaited_since_s is None


def test_a_reference_no_longer_in_step_holds_no_state_back() -> None:
    """The reference stopped (or never was) stamped like the states: a state waits only for
    a reference stamped like the previous state."""
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    schedule.state_arrived(1.0, 1.0, now_s=0.0)
    ticked(schedule, 0.0)
    assert not schedule.state_arrived(1.01, 1.0, now_s=0.010)  # waits; its reference never comes
    ticked(schedule, 0.020)  # the timer acts on it
    assert schedule.state_arrived(1.02, 1.0, now_s=0.030), "1.0 is no longer the previous state's stamp"


def test_no_second_message_driven_tick_within_half_a_period() -> None:
    schedule = TickSchedule(PERIOD_S, 0.0)
    schedule.state_arrived(1.0, None, now_s=0.0)
    ticked(schedule, 0.0)
    assert not schedule.state_arrived(1.01, None, now_s=0.4 * PERIOD_S), "a burst cannot flood the loop"
    assert schedule.untreated_state, "the skipped state waits for the timer"
    assert schedule.state_arrived(1.02, None, now_s=0.5 * PERIOD_S), "half a period on, a late message catches up"


def test_the_rate_cap_also_holds_back_a_reference_driven_tick() -> None:
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    schedule.state_arrived(1.0, 1.0, now_s=0.0)
    ticked(schedule, 0.0)
    schedule.state_arrived(1.01, 1.0, now_s=0.001)
    assert not schedule.reference_arrived(1.01, now_s=0.002)
    assert schedule.reference_arrived(1.01, now_s=0.005)


def test_the_timer_acts_only_after_one_and_a_half_periods_without_a_tick() -> None:
    schedule = TickSchedule(PERIOD_S, 0.0)
    assert schedule.timer_may_act(0.0), "before any tick the timer is the only clock"
    ticked(schedule, 0.0)
    assert not schedule.timer_may_act(1.4 * PERIOD_S)
    assert schedule.timer_may_act(1.5 * PERIOD_S)


def test_the_timer_ticks_a_skipped_state_or_a_stale_stream_and_nothing_else() -> None:
    schedule = TickSchedule(PERIOD_S, 0.0)
    schedule.state_arrived(1.0, None, now_s=0.0)
    ticked(schedule, 0.0)
    assert not schedule.timer_tick_due(0.02, any_stream_stale=False), "merely late sensors get nothing new"
    assert schedule.timer_tick_due(0.02, any_stream_stale=True), "a stale stream gets the hold"
    schedule.state_arrived(1.01, None, now_s=0.001)  # skipped by the rate cap
    assert schedule.timer_tick_due(0.02, any_stream_stale=False)


def test_a_tick_longer_than_the_period_is_an_overrun() -> None:
    schedule = TickSchedule(PERIOD_S, 0.0)
    assert not schedule.tick_finished(0.0, PERIOD_S)
    assert schedule.tick_finished(0.0, 1.5 * PERIOD_S)
    assert list(schedule.tick_latencies_ms) == pytest.approx([PERIOD_S * 1e3, 1.5 * PERIOD_S * 1e3])


def test_latency_ends_at_the_command_but_the_adaptation_after_it_can_overrun() -> None:
    """Adapting after the publish: the latency is the command's, the overrun the whole tick's."""
    schedule = TickSchedule(PERIOD_S, 0.0)
    assert schedule.tick_finished(0.0, 1.2 * PERIOD_S, commanded_s=0.2 * PERIOD_S)
    assert not schedule.tick_finished(1.0, 1.0 + 0.8 * PERIOD_S, commanded_s=1.0 + 0.3 * PERIOD_S)
    assert list(schedule.tick_latencies_ms) == pytest.approx([0.2 * PERIOD_S * 1e3, 0.3 * PERIOD_S * 1e3])


def test_a_stamp_that_jumps_back_is_a_new_state() -> None:
    """A clock restart (the stamp policy accepts it) gives a state that is not a repeat."""
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    schedule.state_arrived(500.0, None, now_s=0.0)
    ticked(schedule, 0.0)
    assert schedule.state_arrived(1.0, None, now_s=0.01)


def test_after_a_reset_the_last_stamp_is_heard_again() -> None:
    """``~/reset_adaptation``: a driver whose clock jumped back onto a stamp already seen."""
    schedule = TickSchedule(PERIOD_S, 0.0)
    schedule.state_arrived(1.0, None, now_s=0.0)
    ticked(schedule, 0.0)
    schedule.forget_last_stamp()
    assert schedule.state_arrived(1.0, None, now_s=0.01)


def test_configure_and_activate_forget_every_state_and_wait() -> None:
    schedule = TickSchedule(PERIOD_S, WAIT_S)
    schedule.state_arrived(1.0, 1.0, now_s=0.0)
    ticked(schedule, 0.0)
    schedule.state_arrived(1.01, 1.0, now_s=0.010)
    schedule.forget_states()
    assert not schedule.untreated_state and schedule.reference_awaited_since_s is None
    assert schedule.state_arrived(1.01, None, now_s=0.02)


def test_loop_rate_and_latency_figures_over_a_bounded_ring() -> None:
    schedule = TickSchedule(PERIOD_S, 0.0)
    assert schedule.loop_rate_hz() == 0.0 and schedule.tick_latency_ms(50) == 0.0
    for k in range(HISTORY_LENGTH + 10):
        schedule.tick_started(k * PERIOD_S)
        schedule.tick_finished(k * PERIOD_S, k * PERIOD_S + 0.002)
    assert schedule.tick_count == HISTORY_LENGTH + 10
    assert len(schedule.tick_starts_s) == len(schedule.tick_latencies_ms) == HISTORY_LENGTH
    assert schedule.loop_rate_hz() == pytest.approx(100.0)
    assert schedule.tick_latency_ms(99) == pytest.approx(2.0)


def test_a_period_that_is_not_positive_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="period_s=0"):
        TickSchedule(0.0, WAIT_S)


def test_the_schedule_loads_without_ros_or_torch() -> None:
    script = "import sys, metarl_ros.tick_schedule; print(sorted(m for m in ('rclpy', 'torch') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
