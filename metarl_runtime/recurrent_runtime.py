"""The robot side of a ``recurrent`` (RL²) bundle: one policy step per tick, numpy + onnxruntime.

An RL² policy adapts without gradients: its GRU hidden state, fed the previous action and
reward, is what it has learnt about the task so far. The runtime therefore owns that state:
``step`` carries it from one call to the next, and ``reset`` zeroes it, which starts a new
trial (the policy knows nothing of the task yet). Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from metarl_runtime.bundle_manifest import (
    MANIFEST_NAME,
    RECURRENT_GRAPH,
    RECURRENT_INPUTS,
    RECURRENT_OUTPUTS,
    BundleCorruptError,
    BundleSchemaError,
    CommonManifest,
    RecurrentBundleManifest,
    check_robot,
)
from metarl_runtime.onnx_sessions import RUNTIME_OPTIMIZATION_LEVEL, BundleRuntime, dry_run_graph, open_graphs
from metarl_runtime.tracking_reward import TrackingReward


class PolicyInputError(ValueError):
    """A policy input of the wrong shape, or with NaN or inf."""


@dataclass(frozen=True)
class PolicyStep:
    """One step's outputs: the Gaussian's mean in normalised units (unclipped) and the critic's value."""

    action_mean: np.ndarray
    """``(B, A)``; the robot clips it to [-1, 1] and scales it to the action limits."""
    value: np.ndarray
    """``(B, 1)``: the critic's estimate of the trial's return from here."""


class RecurrentRuntime(BundleRuntime):
    """A loaded, validated recurrent bundle with its hidden state ``(B, H)``."""

    def __init__(
        self, manifest: RecurrentBundleManifest, session: ort.InferenceSession, reward: TrackingReward
    ) -> None:
        self.manifest = manifest
        self.reward = reward
        """The environment's reward, recomputed from sensors: what the policy reads back each tick."""
        self._session = session
        self._widths = _widths(manifest)
        self.reset()

    @classmethod
    def from_manifest(
        cls,
        manifest: CommonManifest,
        expected_robot: str | None = None,
        intra_op_threads: int = 1,
        available_joints: list[str] | None = None,
        optimization_level: ort.GraphOptimizationLevel = RUNTIME_OPTIMIZATION_LEVEL,
    ) -> RecurrentRuntime:
        """The runtime of a recurrent bundle already read (and its files hashed) by
        ``read_manifest``, after checking its robot, the reward spec, and the graph's inputs,
        outputs and widths against ``bundle.json``, by its metadata and by one dry step."""
        manifest_path = manifest.path / MANIFEST_NAME
        if not isinstance(manifest, RecurrentBundleManifest):
            raise BundleSchemaError(
                f"{manifest_path}: mode '{manifest.mode}' is not 'recurrent'; "
                "it is run by metarl_runtime.model_runtime.AdaptiveRuntime"
            )
        check_robot(manifest, expected_robot, available_joints)
        try:
            reward = TrackingReward(
                manifest.reward, manifest.state_fields, manifest.reference_fields, len(manifest.action_low)
            )
        except ValueError as error:
            raise BundleSchemaError(f"{manifest_path}: field 'reward': {error}") from None
        session = open_graphs(manifest, (RECURRENT_GRAPH,), intra_op_threads, optimization_level)[RECURRENT_GRAPH]
        _check_graph(manifest, session)
        return cls(manifest, session, reward)

    def reset(self, batch_size: int = 1) -> None:
        """Zero the hidden state: a new trial, in which the policy has learnt nothing yet."""
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        self.hidden = np.zeros((batch_size, self.manifest.hidden_size), dtype=np.float32)

    def step(
        self, obs: np.ndarray, prev_action: np.ndarray, prev_reward: np.ndarray, prev_done: np.ndarray
    ) -> PolicyStep:
        """One policy step from the carried hidden state, which it then replaces.

        All inputs are ``(B, ·)`` with B the batch of the last ``reset`` (1 by default): obs
        ``(B, S+R)`` (state then reference; in ``residual`` mode followed by the tracking error,
        ``metarl_runtime.residual_action.tracking_error_features``), the previous normalised action ``(B, A)`` as
        commanded (clipped to [-1, 1]), its reward ``(B, 1)`` and done flag ``(B, 1)``. A wrong
        shape or NaN/inf raises ``PolicyInputError``, including a hidden state that an earlier
        step made non-finite: ``reset`` starts afresh.
        """
        inputs = (obs, prev_action, prev_reward, prev_done, self.hidden)
        feed = {name: self._checked(name, value) for name, value in zip(RECURRENT_INPUTS, inputs, strict=True)}
        action_mean, value, self.hidden = self._session.run(None, feed)
        return PolicyStep(action_mean, value)

    def _checked(self, name: str, value: np.ndarray) -> np.ndarray:
        array = np.asarray(value, dtype=np.float32)
        expected = (self.hidden.shape[0], self._widths[name])
        if array.shape != expected:
            raise PolicyInputError(f"policy input {name} has shape {array.shape}, expected {expected}")
        if not np.all(np.isfinite(array)):
            raise PolicyInputError(f"policy input {name} has NaN or inf")
        return array


def _widths(manifest: RecurrentBundleManifest) -> dict[str, int]:
    """The second dimension of every graph input and output, as ``bundle.json`` implies it."""
    action, hidden = len(manifest.action_low), manifest.hidden_size
    inputs = (manifest.policy_input_dim, action, 1, 1, hidden)
    outputs = (action, 1, hidden)
    return dict(zip(RECURRENT_INPUTS + RECURRENT_OUTPUTS, inputs + outputs, strict=True))


def _check_graph(manifest: RecurrentBundleManifest, session: ort.InferenceSession) -> None:
    """The graph's inputs and outputs, in order, with the widths ``bundle.json`` promises."""
    path = manifest.path / RECURRENT_GRAPH
    widths = _widths(manifest)
    for kind, nodes, expected in (
        ("inputs", session.get_inputs(), RECURRENT_INPUTS),
        ("outputs", session.get_outputs(), RECURRENT_OUTPUTS),
    ):
        names = tuple(node.name for node in nodes)
        if names != expected:
            raise BundleCorruptError(f"{path}: graph {kind} {list(names)} != expected {list(expected)}")
        for node in nodes:
            if len(node.shape) != 2 or node.shape[1] != widths[node.name]:
                raise BundleCorruptError(
                    f"{path}: graph {kind[:-1]} '{node.name}' has shape {node.shape}, "
                    f"bundle.json implies (batch, {widths[node.name]})"
                )
    feed = {name: np.zeros((1, widths[name]), np.float32) for name in RECURRENT_INPUTS}
    shapes = [(1, widths[name]) for name in RECURRENT_OUTPUTS]
    dry_run_graph(manifest, RECURRENT_GRAPH, session, feed, RECURRENT_OUTPUTS, shapes)
