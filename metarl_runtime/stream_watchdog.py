"""Per-stream freshness and stamp policy for the controller's inputs (no ROS here).

Each input stream (``joint_states``, ``reference``, ``imu``, ``odom``) has its own timeout: the
node holds as soon as any stream the bundle needs has had no *valid* message for longer than
its timeout, so one stream that stops (or turns all-NaN) cannot hide behind another that keeps
arriving. Freshness is measured on the node's monotonic clock at receipt, never from the
stamps, so a driver's clock cannot make stale data look fresh.

The stamp policy decides which stamps are acceptable, and is built so that no single message
can lock a stream out:

- a stamp more than ``future_tolerance_s`` ahead of the node's clock is refused
  (``future_stamp``) and *not* remembered, so the next honest message passes;
- a stamp older than the stream's last one by less than ``clock_restart_s`` is refused
  (``out_of_order_stamp``: a reordered or repeated-late message);
- a stamp older by more than ``clock_restart_s`` is a clock restart (a driver or simulator that
  restarted): accepted, counted (``clock_restart``), and the stream's history starts again;
- a zero stamp (0 s, 0 ns: a driver that never sets it) is replaced by the receipt time on the
  node's clock and counted (``zero_stamp``); it is never compared with real stamps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


class StampRejected(ValueError):
    """A message whose stamp the policy refuses; ``reason`` is the diagnostics counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class StampVerdict:
    """What the policy made of an accepted stamp."""

    stamp_s: float
    """The stamp to use (the receipt time for a zero stamp)."""
    note: str = ""
    """``""``, ``"zero_stamp"`` or ``"clock_restart"``: a counter key for an accepted oddity."""


class StampPolicy:
    """Accepts or refuses each stream's stamps; remembers only accepted ones."""

    def __init__(self, future_tolerance_s: float = 1.0, clock_restart_s: float = 1.0) -> None:
        if not (future_tolerance_s > 0 and clock_restart_s > 0):
            raise ValueError(
                f"future_tolerance_s={future_tolerance_s}, clock_restart_s={clock_restart_s}: both must be > 0"
            )
        self.future_tolerance_s = future_tolerance_s
        self.clock_restart_s = clock_restart_s
        self.last_stamp_s: dict[str, float] = {}

    def admit(self, stream: str, stamp_s: float, now_s: float) -> StampVerdict:
        """The stamp to use for ``stream``'s message stamped ``stamp_s``, received at ``now_s``
        (the node's clock, the one stamps are compared with); raises :class:`StampRejected`."""
        if not math.isfinite(stamp_s) or stamp_s < 0:
            raise StampRejected("bad_stamp", f"{stream}: stamp {stamp_s!r} s is not a finite time >= 0")
        if stamp_s == 0.0:
            self.last_stamp_s[stream] = now_s
            return StampVerdict(now_s, "zero_stamp")
        if stamp_s > now_s + self.future_tolerance_s:
            raise StampRejected(
                "future_stamp",
                f"{stream}: stamp {stamp_s:.6f} s is {stamp_s - now_s:.3f} s ahead of this node's clock "
                f"(tolerance {self.future_tolerance_s} s)",
            )
        previous = self.last_stamp_s.get(stream)
        note = ""
        if previous is not None and stamp_s < previous:
            if previous - stamp_s <= self.clock_restart_s:
                raise StampRejected(
                    "out_of_order_stamp",
                    f"{stream}: stamp {stamp_s:.6f} s is older than the last one ({previous:.6f} s)",
                )
            note = "clock_restart"
        self.last_stamp_s[stream] = stamp_s
        return StampVerdict(stamp_s, note)

    def forget(self) -> None:
        """Start every stream's history again (a reset or a re-activation)."""
        self.last_stamp_s.clear()


class StreamWatchdog:
    """When each required stream last brought a valid message, and which ones are stale."""

    def __init__(self, timeouts_s: dict[str, float]) -> None:
        bad = {name: t for name, t in timeouts_s.items() if not (math.isfinite(t) and t > 0)}
        if bad:
            raise ValueError(f"stream timeouts must be finite and > 0 s, got {bad}")
        self.timeouts_s = dict(timeouts_s)
        self.last_valid_s: dict[str, float] = {}

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self.timeouts_s)

    def set_timeout(self, stream: str, timeout_s: float) -> None:
        """Change one stream's timeout (a run-time parameter change)."""
        if stream not in self.timeouts_s:
            raise KeyError(f"{stream!r} is not a watched stream ({self.streams})")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"{stream}: timeout {timeout_s!r} s must be finite and > 0")
        self.timeouts_s[stream] = timeout_s

    def valid(self, stream: str, now_s: float) -> None:
        """Record a valid message of ``stream`` received at ``now_s`` (monotonic s)."""
        if stream in self.timeouts_s:
            self.last_valid_s[stream] = now_s

    def heard_any(self) -> bool:
        """True once any watched stream has brought a valid message."""
        return bool(self.last_valid_s)

    def stale(self, now_s: float) -> list[str]:
        """The watched streams with no valid message within their timeout (never heard: stale)."""
        return [
            name
            for name, timeout_s in self.timeouts_s.items()
            if name not in self.last_valid_s or now_s - self.last_valid_s[name] > timeout_s
        ]

    def forget(self, streams: Iterable[str] | None = None) -> None:
        """Forget receipts (all, or ``streams``): they count as never heard again."""
        for name in list(self.last_valid_s) if streams is None else streams:
            self.last_valid_s.pop(name, None)
