"""When the controller node ticks, and what its ticks took (no ROS, no torch: plain floats in,
decisions out, so the rules are unit-tested without a process).

A tick is driven by the measurements, not by a clock: each joint state with a new stamp gets one
tick as soon as it is heard (so a command's latency is compute only), and a timer only catches up.
The rules, each a method the node calls from the matching callback:

- **a new state** (:meth:`TickSchedule.state_arrived`): a stamp equal to the last one is a repeat
  (a lock-step robot resends the state it waits on) and gets no tick. A new one is *untreated*
  until a tick acts on it. If the reference has come stamped in step with the joint states (its
  last stamp equals the previous state's), this state's own reference is on its way: it waits for
  it (:meth:`TickSchedule.reference_arrived`), at most ``reference_wait_s``, rather than plan with
  the previous step's reference.
- **the rate cap**: a tick driven by a message runs only if the last tick began at least half a
  period ago (at most twice per period: a late message may catch up, a burst cannot flood the loop).
- **the timer fallback** (:meth:`TickSchedule.timer_may_act`, :meth:`TickSchedule.timer_tick_due`):
  only once no tick has begun for 1.5 periods; it then ticks a state the rate cap skipped (or whose
  reference wait ran out) and ticks when a stream is stale (the tick holds). A state already acted
  on gets no second tick: its transition would enter the adaptation window twice.
- **overrun**: a tick that took longer than one period (:meth:`TickSchedule.tick_finished`), the
  adaptation run after its command included: that work delays the next tick just the same.
- **latency**: from a tick's start to its command (the adaptation after it excluded: the robot
  has the command by then); a tick that commands nothing (a hold) counts whole.

Times given as ``now_s`` are a monotonic clock in s (the node passes ``time.perf_counter()``);
stamps are the messages' own (any clock, which may jump: only equality with the last one matters).
The histories behind ``loop_rate_hz`` and the latency percentiles are fixed-size rings.
"""

from __future__ import annotations

from collections import deque

import numpy as np

HISTORY_LENGTH = 1000
"""Ticks kept for the rate and latency figures of diagnostics (a fixed-size ring)."""
MESSAGE_TICK_SPACING_PERIODS = 0.5
"""A message-driven tick needs the last tick to have begun this many periods ago (the rate cap)."""
TIMER_FALLBACK_PERIODS = 1.5
"""The timer acts only after this many periods without a tick (messages drive the loop until then)."""


class TickSchedule:
    """The node's tick timing: which arrival or timer firing ticks, and the tick history."""

    def __init__(self, period_s: float, reference_wait_s: float) -> None:
        if not (np.isfinite(period_s) and period_s > 0):
            raise ValueError(f"tick schedule: period_s={period_s!r} must be finite and > 0")
        self.period_s = period_s
        """The control period (s), one over the bundle's control rate."""
        self.reference_wait_s = reference_wait_s
        """Longest a new state waits for the reference of its own stamp (s; 0: never waits)."""
        self.last_state_stamp_s = float("-inf")
        """Stamp of the newest joint state; a repeat of it is no new measurement to act on."""
        self.untreated_state = False
        """A new joint state arrived that no tick has acted on yet (rate cap, reference wait)."""
        self.reference_awaited_since_s: float | None = None
        """When the untreated state began to wait for its own reference (``now_s`` clock)."""
        self.tick_starts_s: deque[float] = deque(maxlen=HISTORY_LENGTH)
        self.tick_latencies_ms: deque[float] = deque(maxlen=HISTORY_LENGTH)
        self.tick_count = 0

    # -- arrivals ----------------------------------------------------------------------
    def state_arrived(self, stamp_s: float, reference_stamp_s: float | None, now_s: float) -> bool:
        """An accepted joint state of ``stamp_s`` (``reference_stamp_s``: the last accepted
        reference's, ``None`` before any). True when it should tick now."""
        if stamp_s == self.last_state_stamp_s:
            return False  # a repeat of the state already acted on
        previous_stamp_s, self.last_state_stamp_s = self.last_state_stamp_s, stamp_s
        self.untreated_state = True
        if self.reference_wait_s > 0 and reference_stamp_s == previous_stamp_s:
            # The reference has come stamped in step with the joint states (a simulator or a
            # trajectory generator on the same clock), and this state's own reference is on its
            # way: act when it arrives (or, after reference_wait_s, on the timer), not on the last.
            self.reference_awaited_since_s = now_s
            return False
        return self._message_tick_allowed(now_s)

    def reference_arrived(self, reference_stamp_s: float, now_s: float) -> bool:
        """An accepted reference of ``reference_stamp_s``: True when it is the one an untreated
        state waits for and the rate cap allows its tick now."""
        if not (self.untreated_state and reference_stamp_s == self.last_state_stamp_s):
            return False
        return self._message_tick_allowed(now_s)

    def _message_tick_allowed(self, now_s: float) -> bool:
        spacing_s = MESSAGE_TICK_SPACING_PERIODS * self.period_s
        return not self.tick_starts_s or now_s - self.tick_starts_s[-1] >= spacing_s

    # -- the timer ---------------------------------------------------------------------
    def timer_may_act(self, now_s: float) -> bool:
        """True once no tick has begun for 1.5 periods (or none ever): until then messages drive
        the loop and the timer does nothing at all."""
        return not self.tick_starts_s or now_s - self.tick_starts_s[-1] >= TIMER_FALLBACK_PERIODS * self.period_s

    def timer_tick_due(self, now_s: float, any_stream_stale: bool) -> bool:
        """Whether a timer that may act (and has heard a sensor) ticks: for a stale stream (the
        tick holds) or an untreated state, except while that state still waits for its own
        reference. Merely late sensors get nothing new."""
        awaited_s = self.reference_awaited_since_s
        if not any_stream_stale and awaited_s is not None and now_s - awaited_s < self.reference_wait_s:
            return False  # the state's own reference is still due
        return any_stream_stale or self.untreated_state

    # -- ticks -------------------------------------------------------------------------
    def tick_started(self, now_s: float) -> None:
        """A tick begins: it counts for the rate cap, and ends any wait for a reference."""
        self.tick_starts_s.append(now_s)
        self.tick_count += 1
        self.reference_awaited_since_s = None

    def state_treated(self) -> None:
        """The tick answered the state (a command or a hold): the timer has nothing left to catch up."""
        self.untreated_state = False

    def tick_finished(self, started_s: float, finished_s: float, commanded_s: float | None = None) -> bool:
        """Record the tick's latency, to its command at ``commanded_s`` (or to ``finished_s`` when
        it gave none); True when the whole tick, ``started_s`` to ``finished_s``, overran its period."""
        latency_s = (finished_s if commanded_s is None else commanded_s) - started_s
        self.tick_latencies_ms.append(latency_s * 1e3)
        return finished_s - started_s > self.period_s

    # -- forgetting --------------------------------------------------------------------
    def forget_states(self) -> None:
        """Configure and activate: no state has been heard, none waits."""
        self.last_state_stamp_s = float("-inf")
        self.untreated_state = False
        self.reference_awaited_since_s = None

    def forget_last_stamp(self) -> None:
        """``~/reset_adaptation``: the next state is new whatever its stamp (a driver whose clock
        jumped back to a stamp already seen is heard again)."""
        self.last_state_stamp_s = float("-inf")

    # -- figures -----------------------------------------------------------------------
    def loop_rate_hz(self) -> float:
        """Ticks per second over the ring of tick starts (0 before two ticks)."""
        starts = self.tick_starts_s
        if len(starts) > 1 and starts[-1] > starts[0]:
            return (len(starts) - 1) / (starts[-1] - starts[0])
        return 0.0

    def tick_latency_ms(self, percentile: float) -> float:
        """The ``percentile`` of the tick latencies (start to command) over the ring (ms; 0 before any tick)."""
        latencies = np.asarray(self.tick_latencies_ms) if self.tick_latencies_ms else np.zeros(1)
        return float(np.percentile(latencies, percentile))
