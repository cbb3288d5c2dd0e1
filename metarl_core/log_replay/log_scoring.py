"""Adapt on a log as the node would and score the predictions: the simulator's metric on robot data.

At each tick ``t`` of a segment the node's transition ring buffer (the last M transitions) gets
the transition that ended at ``t`` and, every N ticks, the bundle's own adaptation graph runs on
it from the meta-learned parameters (``metarl_runtime.model_runtime.AdaptiveRuntime.adapt``: kept only when
finite and the window loss dropped, ``metarl_runtime.adaptation_guard``, the rule the simulator's
adaptive MPC applies too). The parameters in force at ``t`` then predict the next K
logged transitions, one step each; the figure is their mean squared error of the normalised state
change, ``mean(((ŝ' - s') / delta_std)²)``, which is exactly the K-future window loss that
``metarl eval`` reports in simulation. It is scored only where the window is full and K logged
transitions follow, so every row is averaged over the same ticks. A segment starts from the
meta-parameters with an empty window, like the node after ``~/reset_adaptation``.

Rows: the bundle adapted, the same bundle unadapted (its meta-parameters), and any comparison
models (a second bundle adapting by its own graph, an MB model without adaptation). The
would-be command at ``t`` is the bundle's planner run on the logged state and reference with the
parameters in force, set against the command that the log shows held over ``t -> t+1``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from metarl_core.log_replay.bag_reading import LogReplayError
from metarl_core.log_replay.log_transitions import Segment
from metarl_runtime.model_runtime import AdaptiveRuntime

ADAPTED = "adapted"
UNADAPTED = "no adaptation"


class ModelMismatchError(LogReplayError):
    """A comparison model reads or commands other fields than the bundle being scored."""


@dataclass(frozen=True)
class ScoredModel:
    """A row of the table: a runtime, and whether it adapts on the log."""

    name: str
    runtime: AdaptiveRuntime
    adapts: bool


@dataclass
class SegmentScore:
    """One segment: per-row error at each scored tick, and the would-be commands."""

    start_s: float
    end_s: float
    transitions: int
    times_s: np.ndarray
    """Stamp of each scored tick (s)."""
    errors: dict[str, np.ndarray]
    """``{row: K-future prediction error at each scored tick}``."""
    would_be_commands: np.ndarray
    logged_commands: np.ndarray
    adaptations: int = 0
    adaptations_accepted: int = 0

    def mean(self, row: str) -> float:
        return float(np.mean(self.errors[row])) if len(self.errors[row]) else float("nan")


@dataclass
class LogScore:
    """Every segment's score, and the whole log's figures."""

    rows: list[str]
    segments: list[SegmentScore] = field(default_factory=list)

    def mean(self, row: str) -> float:
        """The row's error over every scored tick of every segment."""
        values = np.concatenate([s.errors[row] for s in self.segments])
        return float(np.mean(values)) if len(values) else float("nan")

    def command_rms_per_joint(self) -> np.ndarray:
        """RMS of would-be minus logged command per action entry, over every tick."""
        would = np.concatenate([s.would_be_commands for s in self.segments])
        logged = np.concatenate([s.logged_commands for s in self.segments])
        return np.sqrt(np.mean((would - logged) ** 2, axis=0))


class _NodeAdaptation:
    """One model's ring buffer and parameters, updated tick by tick as the node does."""

    def __init__(self, model: ScoredModel, adapt_every_n_ticks: int) -> None:
        self.model = model
        self.every = adapt_every_n_ticks
        self.window: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=model.runtime.manifest.window_size)
        self.params = model.runtime.meta_params
        self.attempts = self.accepted = 0

    def tick(self, tick: int, transition: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        if transition is not None:
            self.window.append(transition)
        if self.model.adapts and len(self.window) >= 2 and (tick + 1) % self.every == 0:
            result = self.model.runtime.adapt(*(np.stack(x) for x in zip(*self.window, strict=True)))
            self.params = result.params
            self.attempts += 1
            self.accepted += int(result.accepted)

    @property
    def full(self) -> bool:
        return len(self.window) == self.window.maxlen


def check_comparable(bundle: AdaptiveRuntime, other: AdaptiveRuntime, name: str) -> None:
    """Refuse a comparison model whose state, reference or action fields differ from the bundle's."""
    a, b = bundle.manifest, other.manifest
    for field_name in ("state_fields", "joint_names"):
        if getattr(a, field_name) != getattr(b, field_name):
            raise ModelMismatchError(
                f"{name} ({b.path}): {field_name} {list(getattr(b, field_name))} differ from the bundle's "
                f"{list(getattr(a, field_name))}"
            )
    if len(a.action_low) != len(b.action_low):
        raise ModelMismatchError(f"{name} ({b.path}): {len(b.action_low)} actions, the bundle has {len(a.action_low)}")


def score_segment(
    models: list[ScoredModel],
    segment: Segment,
    future_window: int,
    adapt_every_n_ticks: int = 1,
    adapt_after_command: bool = False,
) -> SegmentScore:
    """Score one segment; ``models[0]`` is the bundle whose planner gives the would-be commands,
    with the parameters in force when the node planned: those adapted on this tick's window (the
    node's default), or with ``adapt_after_command`` (its ``adapt_after_publish``) those adapted
    at the end of the tick before. The prediction errors use this tick's window either way."""
    if future_window < 1 or adapt_every_n_ticks < 1:
        raise ValueError(f"future_window={future_window} and adapt_every_n_ticks={adapt_every_n_ticks} must be >= 1")
    primary = models[0].runtime
    primary.reset_planner()
    nodes = [_NodeAdaptation(m, adapt_every_n_ticks) for m in models]
    errors: dict[str, list[float]] = {m.name: [] for m in models}
    times, would_be = [], []
    delta_std = [m.runtime.manifest.normalizer["delta_std"] for m in models]
    count = len(segment)
    for t in range(count):
        transition = None
        if t > 0:
            transition = (segment.states[t - 1], segment.actions[t - 1], segment.next_states[t - 1])
        in_force = nodes[0].params
        for node in nodes:
            node.tick(t, transition)
        planned_with = in_force if adapt_after_command else nodes[0].params
        would_be.append(primary.plan(planned_with, segment.states[t], segment.references[t]))
        if t + future_window > count or not all(node.full for node in nodes):
            continue
        future = slice(t, t + future_window)
        times.append(segment.times_s[t])
        for node, std in zip(nodes, delta_std, strict=True):
            predicted = node.model.runtime.predict(node.params, segment.states[future], segment.actions[future])
            errors[node.model.name].append(float(np.mean(((predicted - segment.next_states[future]) / std) ** 2)))
    return SegmentScore(
        float(segment.times_s[0]),
        float(segment.times_s[-1]),
        count,
        np.asarray(times),
        {k: np.asarray(v) for k, v in errors.items()},
        np.asarray(would_be, dtype=np.float64),
        segment.actions.astype(np.float64),
        nodes[0].attempts,
        nodes[0].accepted,
    )


def score_log(
    models: list[ScoredModel], segments: list[Segment], future_window: int, adapt_every_n_ticks: int = 1
) -> LogScore:
    """Score every segment (each from the meta-parameters, as after a reset)."""
    for model in models[1:]:
        check_comparable(models[0].runtime, model.runtime, model.name)
    score = LogScore([m.name for m in models])
    for segment in segments:
        score.segments.append(score_segment(models, segment, future_window, adapt_every_n_ticks))
    return score
