"""The robot's control step over a bundle, numpy only: ``(state, reference) -> command``.

This is the logic the ROS node runs each tick, kept free of ROS so that it is unit-tested and
reused by the simulated demo. ``load_controller`` picks the controller by the bundle's mode:

- model-based bundles (``OnlineAdaptiveController``): transitions go into a ring buffer of the
  last M; every N ticks the meta-parameters are adapted on it (kept only when finite and the
  window loss dropped); MPPI plans through the accepted parameters. As an option the adaptation
  runs after the command is out (``adapt_after_command``): a tick plans with the parameters
  adapted at the end of the tick before, so the adapt graph is off the command's critical path;
- recurrent bundles (``RecurrentPolicyController``): the RL² policy steps once per tick and its
  hidden state carries what it has learnt about the task;
- residual bundles (``ResidualComputedTorqueController``): adaptive computed torque, the arm's
  nominal rigid-body model plus a residual torque model adapted on the last M transitions.

Both share one interface: call, ``hold()``, ``reset()``, ``set_adaptation_enabled()``,
``diagnostic_values()``, ``after_command()`` (what a tick leaves for after its command is out);
the command is clamped to the bundle's limits and is never NaN or inf.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metarl_runtime.bundle_manifest import read_manifest
from metarl_runtime.model_runtime import AdaptiveRuntime
from metarl_runtime.recurrent_runtime import RecurrentRuntime
from metarl_runtime.residual_action import ResidualTorque, tracking_error_features
from metarl_runtime.residual_runtime import ResidualRuntime
from metarl_runtime.residual_torque import ResidualPairs


class RowWindow:
    """The last ``capacity`` rows of a few parallel float32 arrays (one width each), oldest first.

    Why not a deque stacked each tick: that allocates and copies the whole window on every
    adaptation. Each row is written twice, at ``i`` and ``i + capacity`` of buffers twice the
    window long, so the newest ``capacity`` rows are always one contiguous slice, in the order
    they came (the same arrays, element for element, as stacking the deque). ``arrays()``
    returns views that the next ``append`` may overwrite: use them before appending again.
    """

    def __init__(self, capacity: int, *widths: int) -> None:
        if capacity < 1:
            raise ValueError(f"window capacity={capacity} must be >= 1")
        self.capacity = capacity
        self._buffers = [np.zeros((2 * capacity, width), np.float32) for width in widths]
        self._count = 0
        self._next = 0

    def __len__(self) -> int:
        return self._count

    def append(self, *rows: np.ndarray) -> None:
        """Add one row to each array, dropping the oldest when full."""
        for buffer, row in zip(self._buffers, rows, strict=True):
            buffer[self._next] = row
            buffer[self._next + self.capacity] = row
        self._next = (self._next + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Each array's ``(len(self), width)`` rows, oldest first."""
        start = self._next + self.capacity - self._count
        end = self._next + self.capacity
        return tuple(buffer[start:end] for buffer in self._buffers)


class TransitionWindow(RowWindow):
    """The last ``capacity`` transitions, oldest first: ``arrays()`` is (states, actions, next_states)."""

    def __init__(self, capacity: int, state_dim: int, action_dim: int) -> None:
        super().__init__(capacity, state_dim, action_dim, state_dim)


@dataclass
class AdaptationStats:
    """What diagnostics report about adaptation."""

    attempts: int = 0
    accepted: int = 0
    last_loss_before: float = float("nan")
    last_loss_after: float = float("nan")
    last_reason: str = ""
    rejected_reasons: dict[str, int] = field(default_factory=dict)


class OnlineAdaptiveController:
    """``(state, reference) -> command`` with online adaptation from the meta-parameters.

    Two orderings of a tick t (its transition ``t-1 -> t`` appended first in both), chosen by
    ``adapt_after_command``:

    - **after the command** (``adapt_after_command=True``): plan with the parameters adapted on the window as it
      was at the end of tick t-1, return the command; :meth:`after_command`, called once the
      command is out (the node: after publishing), adapts on the window ending with the
      transition into t, for tick t+1. The command's latency then holds no adapt graph. The
      price: the parameters a tick plans with have not seen its newest transition (one control
      period older). A caller that never calls :meth:`after_command` (the in-process demo and
      benchmarks) gets the same algorithm: the next call runs the pending adaptation first.
    - **before the plan** (the default): adapt on the window ending with the transition into
      t, then plan with the result (the algorithm as trained and evaluated in torch). Default
      because the after ordering, harmless in process (``metarl bench switch``), failed the
      closed-loop ROS test's bar on its bundle, and diverges in process on that bundle's reference
      trajectory too (BENCHMARKS.md, issue 17).

    Both keep the same guards: an adaptation is planned with only when finite and the window
    loss dropped (else the meta-parameters), a plan that fails or is non-finite gives the hold,
    and commands are clamped to the bundle's limits.
    """

    def __init__(
        self,
        runtime: AdaptiveRuntime,
        adapt_every_n_ticks: int = 1,
        adaptation_enabled: bool = True,
        adapt_after_command: bool = False,
    ) -> None:
        if adapt_every_n_ticks < 1:
            raise ValueError(f"adapt_every_n_ticks={adapt_every_n_ticks} must be >= 1")
        self.runtime = runtime
        self.adapt_every_n_ticks = adapt_every_n_ticks
        self.adaptation_enabled = adaptation_enabled
        self.adapt_after_command = adapt_after_command
        """True: adapt in :meth:`after_command`, after the command; False: adapt before planning."""
        self.low, self.high = runtime.manifest.action_low, runtime.manifest.action_high
        self.last_adapt_s = 0.0
        """Wall time of the adaptation run by the last call and the :meth:`after_command` after it
        (0 when neither adapted): the node's stage profile."""
        self.reset()

    def reset(self) -> None:
        """Forget the window and go back to the meta-learned parameters."""
        manifest = self.runtime.manifest
        self.window = TransitionWindow(manifest.window_size, manifest.state_dim, len(manifest.action_low))
        self.params = self.runtime.meta_params
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.ticks = 0
        self.adaptation_pending = False
        """A tick asked for an adaptation that :meth:`after_command` (or the next call) runs."""
        self.stats = AdaptationStats()
        self.runtime.reset_planner()

    def hold(self, command: np.ndarray | None = None) -> np.ndarray:
        """The safe command when inputs cannot be trusted: zero (effort or twist), within limits,
        or ``command`` when the caller sends another hold (the node's damping hold). The window
        gets no transition across a hold: its state is not one the model's action produced."""
        self.previous = None
        hold = np.zeros_like(self.low) if command is None else np.asarray(command, dtype=np.float64)
        return np.clip(np.nan_to_num(hold, nan=0.0, posinf=0.0, neginf=0.0), self.low, self.high)

    def set_adaptation_enabled(self, enabled: bool) -> None:
        """Off: plan with the meta-learned parameters, adapting no more until switched back on."""
        self.adaptation_enabled = enabled
        if not enabled:
            self.params = self.runtime.meta_params
            self.adaptation_pending = False

    def diagnostic_values(self) -> dict[str, str]:
        """This controller's part of ``/diagnostics``: adaptation counts and the last losses."""
        stats = self.stats
        return {
            "adaptations": str(stats.attempts),
            "adaptations_accepted": str(stats.accepted),
            "loss_before": f"{stats.last_loss_before:.6g}",
            "loss_after": f"{stats.last_loss_after:.6g}",
        }

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        self.last_adapt_s = 0.0
        if self.adaptation_pending:  # the last tick's, its caller not having run it: before this transition
            self.after_command()
        if self.previous is not None:
            self.window.append(self.previous[0], self.previous[1], state)
        self.ticks += 1
        due = self.adaptation_enabled and len(self.window) >= 2 and self.ticks % self.adapt_every_n_ticks == 0
        if due and not self.adapt_after_command:
            self._timed_adapt()
        try:
            command = self.runtime.plan(self.params, state, reference)
        except (FloatingPointError, np.linalg.LinAlgError):  # every rollout non-finite; a NaN model inverse
            command = self.hold()
        if not np.all(np.isfinite(command)):
            command = self.hold()
        command = np.clip(command, self.low, self.high)
        self.previous = (state, command.astype(np.float32))
        self.adaptation_pending = due and self.adapt_after_command
        return command

    def after_command(self) -> bool:
        """The work a tick leaves for after its command: the adaptation due (with
        ``adapt_after_command``, on the window as the call left it; the next call plans with its
        result) and the next plan's sampling noise (drawn ahead, the same draws as the plan would
        make). True when it adapted. The node calls it right after publishing, in the same
        executor, so it never overlaps a tick; no adaptation is pending after ``reset``, a
        disabled adaptation, or a call that was not due to adapt."""
        adapted = self.adaptation_pending
        if adapted:
            self.adaptation_pending = False
            self._timed_adapt()
        self.runtime.prepare_plan()
        return adapted

    def _timed_adapt(self) -> None:
        started = time.perf_counter()
        self._adapt()
        self.last_adapt_s += time.perf_counter() - started

    def _adapt(self) -> None:
        result = self.runtime.adapt(*self.window.arrays())
        stats = self.stats
        stats.attempts += 1
        stats.last_loss_before, stats.last_loss_after, stats.last_reason = (
            result.loss_before,
            result.loss_after,
            result.reason,
        )
        if result.accepted:
            stats.accepted += 1
        else:
            key = result.reason.split(" (")[0]
            stats.rejected_reasons[key] = stats.rejected_reasons.get(key, 0) + 1
        self.params = result.params


class ResidualComputedTorqueController:
    """``(state, reference) -> command`` by adaptive computed torque over a residual bundle.

    Each tick: the transition the last command produced joins the window of the last M as its
    residual pair (input, target and, for the physical rule, design: what
    ``NominalArm.regression_pairs`` gives for that one transition, each pair computed once);
    every N ticks the residual model is adapted on the window's pairs from the meta-parameters,
    or for a warm-started gradient bundle from the last adaptation's parameters pulled back toward
    them (kept only when finite and the window loss dropped); the command is the nominal computed
    torque at the desired acceleration plus the adapted residual (``ResidualRuntime.command_torque``).
    The new pair's nominal inverse dynamics and the command's run as one batch of two: a call's
    cost is numpy's per-operation overhead, not its rows (about 0.6 ms for one row or eight on
    this machine), and those calls were most of a tick. The reference acceleration is the
    reference velocity differenced over one period (zero on the first tick and after a reset), as
    the task suite's nominal controller does. The safety path is ``OnlineAdaptiveController``'s:
    a state, reference or command that is not finite gives the hold (and never enters the
    window), every command is clamped to the bundle's limits, and no transition crosses a hold.
    """

    def __init__(self, runtime: ResidualRuntime, adapt_every_n_ticks: int = 1, adaptation_enabled: bool = True) -> None:
        if adapt_every_n_ticks < 1:
            raise ValueError(f"adapt_every_n_ticks={adapt_every_n_ticks} must be >= 1")
        self.runtime = runtime
        self.adapt_every_n_ticks = adapt_every_n_ticks
        self.adaptation_enabled = adaptation_enabled
        self.low, self.high = runtime.manifest.action_low, runtime.manifest.action_high
        self.period_s = 1.0 / runtime.manifest.control_rate_hz
        self.last_adapt_s = 0.0
        """Wall time of the last call's adaptation (0 when it did not adapt): the node's stage profile."""
        self.reset()

    def reset(self) -> None:
        """Forget the window and the reference's velocity, and go back to the meta-parameters."""
        manifest = self.runtime.manifest
        n = len(manifest.action_low)
        self.design_width = self.runtime.nominal.design_width if self.runtime.physical else 0
        """Per-joint design columns kept per pair: only the physical rule solves over them."""
        self.window = RowWindow(manifest.window_size, 4 * n, n, n * self.design_width)
        """Residual pairs of the last M transitions: inputs, targets, design flattened per pair."""
        self.params = self.runtime.meta_params
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.previous_reference_velocity: np.ndarray | None = None
        self.ticks = 0
        self.stats = AdaptationStats()

    def hold(self, command: np.ndarray | None = None) -> np.ndarray:
        """The safe command (zero, or the caller's, within limits); the window gets no transition
        across it: its state is not one the controller's command produced."""
        self.previous = None
        hold = np.zeros_like(self.low) if command is None else np.asarray(command, dtype=np.float64)
        return np.clip(np.nan_to_num(hold, nan=0.0, posinf=0.0, neginf=0.0), self.low, self.high)

    def after_command(self) -> bool:
        """Nothing to run after the command: the residual's closed-form adaptation runs in the
        call, before the command it serves. Always False."""
        return False

    def set_adaptation_enabled(self, enabled: bool) -> None:
        """Off: the meta-learned residual, adapting no more until switched back on."""
        self.adaptation_enabled = enabled
        if not enabled:
            self.params = self.runtime.meta_params

    def diagnostic_values(self) -> dict[str, str]:
        """Adaptation counts and the last window losses, as ``OnlineAdaptiveController`` reports."""
        stats = self.stats
        return {
            "adaptations": str(stats.attempts),
            "adaptations_accepted": str(stats.accepted),
            "loss_before": f"{stats.last_loss_before:.6g}",
            "loss_after": f"{stats.last_loss_after:.6g}",
        }

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        reference = np.asarray(reference, dtype=np.float64)
        if not (np.all(np.isfinite(state)) and np.all(np.isfinite(reference))):
            return self.hold()  # nothing of it enters the window or the reference's history
        n = len(self.low)
        velocity = reference[n:]
        previous = self.previous_reference_velocity
        acceleration = np.zeros(n) if previous is None else (velocity - previous) / self.period_s
        self.previous_reference_velocity = velocity
        motion = state.astype(np.float64)
        q, qd = motion[:n], motion[n:]
        with np.errstate(all="ignore"):
            qdd_des = self.runtime.nominal.desired_acceleration(q, qd, reference[:n], velocity, acceleration)
            feedforward = self._feedforward_and_new_pair(q, qd, qdd_des, velocity, motion)
        self.ticks += 1
        self.last_adapt_s = 0.0
        if self.adaptation_enabled and len(self.window) >= 2 and self.ticks % self.adapt_every_n_ticks == 0:
            started = time.perf_counter()
            self._adapt()
            self.last_adapt_s = time.perf_counter() - started
        with np.errstate(all="ignore"):
            command = self.runtime.command_torque(self.params, q, qd, qdd_des, velocity, feedforward)
        if not np.all(np.isfinite(command)):
            return self.hold()
        command = np.clip(command, self.low, self.high)
        self.previous = (state, command.astype(np.float32))
        return command

    def _feedforward_and_new_pair(
        self, q: np.ndarray, qd: np.ndarray, qdd_des: np.ndarray, reference_velocity: np.ndarray, motion: np.ndarray
    ) -> np.ndarray:
        """The command's nominal torque; with it, in the same inverse-dynamics batch, the residual
        pair of the transition the last command produced, appended to the window (as
        ``NominalArm.regression_pairs`` gives it for that transition)."""
        nominal = self.runtime.nominal
        if self.previous is None:
            return nominal.feedforward(q, qd, qdd_des, reference_velocity)
        before, command = self.previous
        q0, qd0, qdd0 = nominal.measured_motion(before, motion)
        both = nominal.feedforward(
            np.concatenate([q0, q[None]]),
            np.concatenate([qd0, qd[None]]),
            np.concatenate([qdd0, qdd_des[None]]),
            np.concatenate([qd0, reference_velocity[None]]),
        )
        pair = nominal.pairs_from_motion(q0, qd0, qdd0, command[None], both[:1], with_design=self.design_width > 0)
        self.window.append(pair.inputs[0], pair.targets[0], pair.design[0].reshape(-1))
        return both[1]

    def _adapt(self) -> None:
        stats = self.stats
        stats.attempts += 1
        inputs, targets, design = self.window.arrays()
        pairs = ResidualPairs(inputs, targets, design.reshape(len(inputs), len(self.low), self.design_width))
        if not all(np.all(np.isfinite(part)) for part in pairs):
            stats.last_reason = "window not finite"
            stats.rejected_reasons["window not finite"] = stats.rejected_reasons.get("window not finite", 0) + 1
            self.params = self.runtime.meta_params
            return
        result = self.runtime.adapt(pairs, last=self.params)
        stats.last_loss_before, stats.last_loss_after, stats.last_reason = (
            result.loss_before,
            result.loss_after,
            result.reason,
        )
        if result.accepted:
            stats.accepted += 1
        else:
            key = result.reason.split(" (")[0]
            stats.rejected_reasons[key] = stats.rejected_reasons.get(key, 0) + 1
        self.params = result.params


@dataclass
class PolicyStats:
    """What diagnostics report about a recurrent policy; counts survive ``reset``."""

    ticks: int = 0
    trials: int = 0
    """Hidden-state resets by ``reset`` (the first one included): trials started."""
    non_finite: int = 0
    """Ticks whose inputs or outputs were NaN or inf: safe hold, hidden state zeroed."""
    last_value: float = float("nan")
    """The critic's estimate of the return at the last tick (higher: the policy expects to track better)."""


class RecurrentPolicyController:
    """``(state, reference) -> command`` with an RL² policy: its hidden state is the adaptation.

    Each tick feeds the policy what it saw in training: the observation (state then reference),
    the previous command in normalised units as actually sent (clipped to [-1, 1]; after a
    hold, the hold), the reward that command earned (recomputed from the new state with the
    bundle's reward spec), and done = 0. A robot has no episode boundaries: a trial runs from the
    last ``reset`` (the ``~/reset_adaptation`` service) for as long as the controller runs.

    NaN or inf in the policy's inputs or outputs (a finite but absurd sensor value can overflow
    float32) gives the safe hold, is counted, and zeroes the hidden state, which a NaN would
    otherwise poison for good. With adaptation disabled the hidden state is frozen at zero:
    every tick acts as the first tick of a trial (the policy still reads the previous command
    and its reward), so nothing learnt about the task is carried.

    A bundle of ``action: residual`` is run as it was trained: the policy also sees the tracking
    error, and the command is the nominal computed torque (the bundle's nominal arm, in numpy)
    plus the policy's bounded correction (``metarl_runtime.residual_action``). A hold is fed back
    as a zero correction: the hold is not a correction of any nominal torque.
    """

    def __init__(self, runtime: RecurrentRuntime, adaptation_enabled: bool = True) -> None:
        self.runtime = runtime
        self.adaptation_enabled = adaptation_enabled
        manifest = runtime.manifest
        self.low, self.high = manifest.action_low, manifest.action_high
        self.residual: ResidualTorque | None = None
        """The nominal controller and correction bound of an ``action: residual`` bundle."""
        if manifest.action == "residual" and manifest.nominal_arm is not None:
            self.residual = ResidualTorque(manifest.nominal_arm, manifest.residual_torque_fraction, self.low, self.high)
        self.stats = PolicyStats()
        self.last_adapt_s = 0.0
        """Always 0: the policy's adaptation is its step (kept for the node's stage profile)."""
        self.reset()

    def reset(self) -> None:
        """Start a new trial: zero hidden state, and no previous command (zero action and reward)."""
        self.runtime.reset()
        if self.residual is not None:
            self.residual.reset()
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        """(normalised action, command) of the last tick."""
        self.stats.trials += 1

    def hold(self, command: np.ndarray | None = None) -> np.ndarray:
        """The safe command when inputs cannot be trusted: zero (effort or twist), within limits,
        or ``command`` when the caller sends another hold (the node's damping hold).

        It is what the robot does next, so the next tick feeds it back as the previous action."""
        hold = np.zeros_like(self.low) if command is None else np.asarray(command, dtype=np.float64)
        command = np.clip(np.nan_to_num(hold, nan=0.0, posinf=0.0, neginf=0.0), self.low, self.high)
        if self.residual is not None:
            # The reference velocities around a hold are not one period apart: no acceleration from them.
            self.residual.reset()
            self.previous = (np.zeros_like(command), command)
        else:
            self.previous = (2.0 * (command - self.low) / (self.high - self.low) - 1.0, command)
        return command

    def after_command(self) -> bool:
        """Nothing to run after the command: the policy's adaptation is its step. Always False."""
        return False

    def set_adaptation_enabled(self, enabled: bool) -> None:
        """Off: the hidden state is zeroed now and after every tick (frozen at zero)."""
        self.adaptation_enabled = enabled
        if not enabled:
            self.runtime.reset()

    def diagnostic_values(self) -> dict[str, str]:
        """This controller's part of ``/diagnostics``: the hidden state's size, the critic's value,
        trials started and non-finite ticks."""
        stats = self.stats
        return {
            "hidden_norm": f"{float(np.linalg.norm(self.runtime.hidden)):.6g}",
            "policy_value": f"{stats.last_value:.6g}",
            "trials": str(stats.trials),
            "policy_non_finite": str(stats.non_finite),
        }

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        self.stats.ticks += 1
        obs = np.concatenate([state, reference]).astype(np.float32)[None]
        prev_action, prev_reward = np.zeros((1, len(self.low)), np.float32), np.zeros((1, 1), np.float32)
        if self.previous is not None:
            prev_action[0] = self.previous[0]
            prev_reward[0, 0] = self.runtime.reward(state, reference, self.previous[1])
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(prev_reward))):
            return self._non_finite()
        policy_obs = obs if self.residual is None else tracking_error_features(obs, len(self.low))
        step = self.runtime.step(policy_obs, prev_action, prev_reward, np.zeros((1, 1), np.float32))
        if not (np.all(np.isfinite(step.action_mean)) and np.all(np.isfinite(self.runtime.hidden))):
            return self._non_finite()
        self.stats.last_value = float(step.value[0, 0])
        if not self.adaptation_enabled:
            self.runtime.reset()
        normalised = np.clip(step.action_mean[0].astype(np.float64), -1.0, 1.0)
        if self.residual is not None:
            command = self.residual(obs, normalised[None])[0]
            if not np.all(np.isfinite(command)):
                return self._non_finite()
        else:
            command = np.clip(self.low + (normalised + 1.0) * 0.5 * (self.high - self.low), self.low, self.high)
        self.previous = (normalised, command)
        return command

    def _non_finite(self) -> np.ndarray:
        self.stats.non_finite += 1
        self.runtime.reset()
        return self.hold()


def load_controller(
    path: Path | str,
    expected_robot: str | None = None,
    intra_op_threads: int = 1,
    adapt_every_n_ticks: int = 1,
    adaptation_enabled: bool = True,
    trusted_public_key: Path | str | None = None,
    adapt_after_command: bool = False,
) -> OnlineAdaptiveController | RecurrentPolicyController | ResidualComputedTorqueController:
    """The per-tick controller a bundle's mode calls for, its runtime loaded and validated.

    ``adapt_every_n_ticks`` applies to model-based and residual bundles, ``adapt_after_command``
    to model-based ones (a residual adaptation is a closed-form solve that is cheap before the
    command); an RL² policy updates its hidden state every tick, as it was trained to. With
    ``trusted_public_key`` (a PEM file) an unsigned or wrongly signed bundle is refused
    (``BundleSignatureError``).
    """
    manifest = read_manifest(Path(path), trusted_public_key)  # read and hashed once, for either runtime
    if manifest.mode == "recurrent":
        runtime = RecurrentRuntime.from_manifest(manifest, expected_robot, intra_op_threads)
        return RecurrentPolicyController(runtime, adaptation_enabled)
    if manifest.mode == "residual":
        residual = ResidualRuntime.from_manifest(manifest, expected_robot, intra_op_threads)
        return ResidualComputedTorqueController(residual, adapt_every_n_ticks, adaptation_enabled)
    adaptive = AdaptiveRuntime.from_manifest(manifest, expected_robot, intra_op_threads)
    return OnlineAdaptiveController(adaptive, adapt_every_n_ticks, adaptation_enabled, adapt_after_command)
