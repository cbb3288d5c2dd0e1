"""The robot side of a bundle: load, validate, adapt, predict, plan — numpy + onnxruntime only.

Nothing here imports torch (a test runs it where ``import torch`` fails). The adaptation rule is
picked once, when the bundle loads, from its ``mode`` (``metarl_runtime.adaptation_rules``): the
gradient rule runs ``adapt.onnx``, the n gradient steps of the window loss from the
meta-learned parameters, so the robot adapts exactly as training did; the closed-form RLS rule
runs ``features.onnx`` and one small solve. Either result passes the accept guard
(``metarl_runtime.adaptation_guard``) before it is planned with.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from metarl_runtime.adaptation_guard import adaptation_refusal
from metarl_runtime.adaptation_rules import RUNTIME_ADAPTATIONS, RuntimeAdaptation
from metarl_runtime.bundle_manifest import (
    MANIFEST_NAME,
    BundleCorruptError,
    BundleError,
    BundleIntegrityError,
    BundleManifest,
    BundleSchemaError,
    BundleSignatureError,
    CommonManifest,
    ResidualBundleManifest,
    RobotMismatchError,
    check_robot,
)
from metarl_runtime.mppi import MPPIPlanner, build_tracking_planner
from metarl_runtime.onnx_sessions import (
    RUNTIME_OPTIMIZATION_LEVEL,
    BundleRuntime,
    dry_run_graph,
    one_line,
    open_graphs,
)

__all__ = [
    "AdaptationResult",
    "AdaptiveRuntime",
    "BundleCorruptError",
    "BundleError",
    "BundleIntegrityError",
    "BundleSchemaError",
    "BundleSignatureError",
    "RobotMismatchError",
    "WindowError",
]


class WindowError(ValueError):
    """A transition window that cannot be adapted on (wrong shape, NaN or inf)."""


@dataclass(frozen=True)
class AdaptationResult:
    """Parameters to plan with, and why: ``accepted`` is False when the meta-parameters were kept."""

    params: list[np.ndarray]
    loss_before: float
    loss_after: float
    accepted: bool
    reason: str


class AdaptiveRuntime(BundleRuntime):
    """A loaded, validated bundle: ``adapt`` on a window, ``predict`` and ``plan`` with parameters."""

    def __init__(
        self,
        manifest: BundleManifest,
        adaptation: RuntimeAdaptation,
        predict_session: ort.InferenceSession,
        meta_params: list[np.ndarray],
    ) -> None:
        self.manifest = manifest
        self.meta_params = meta_params
        self.adaptation = adaptation
        """The bundle's adaptation rule, with its graph's session."""
        self._predict = predict_session
        self._names = list(manifest.parameter_names)
        self._predict_params: Sequence[np.ndarray] | None = None
        self._predict_feed: dict[str, np.ndarray] = {}
        self.planner = self._build_planner()

    @classmethod
    def from_manifest(
        cls,
        manifest: CommonManifest,
        expected_robot: str | None = None,
        intra_op_threads: int = 1,
        available_joints: list[str] | None = None,
        optimization_level: ort.GraphOptimizationLevel = RUNTIME_OPTIMIZATION_LEVEL,
    ) -> AdaptiveRuntime:
        """The runtime of a model-based bundle already read (and its files hashed) by
        ``read_manifest``, after checking its robot, meta-parameters, and a dry run of both graphs
        whose outputs must have the names and shapes ``bundle.json`` implies."""
        if not isinstance(manifest, BundleManifest):
            raise BundleSchemaError(
                f"{manifest.path / MANIFEST_NAME}: mode '{manifest.mode}' is run by "
                "metarl_runtime.recurrent_runtime.RecurrentRuntime (or metarl_runtime.controllers.load_controller)"
            )
        check_robot(manifest, expected_robot, available_joints)
        rule = RUNTIME_ADAPTATIONS[manifest.mode]
        sessions = open_graphs(manifest, (rule.GRAPH, "predict.onnx"), intra_op_threads, optimization_level)
        meta_params = load_meta_params(manifest)
        _check_graph_inputs(manifest, sessions[rule.GRAPH], list(rule.DATA_INPUTS), rule.GRAPH)
        _check_graph_inputs(manifest, sessions["predict.onnx"], ["states", "actions"], "predict.onnx")
        adaptation = rule(manifest, sessions[rule.GRAPH], meta_params)
        runtime = cls(manifest, adaptation, sessions["predict.onnx"], meta_params)
        runtime._dry_run()
        return runtime

    def _dry_run(self) -> None:
        """Run each graph once on a window at the normaliser's means and check every output's
        name and shape, then plan once: a graph of another shape, or a planner that cannot run
        on it, is refused now, at load, not on the first tick."""
        m = self.manifest
        norm = m.normalizer
        length = 2
        states = np.repeat(norm["state_mean"][None, :], length, axis=0)
        actions = np.repeat(norm["action_mean"][None, :], length, axis=0)
        self.adaptation.dry_run({"states": states, "actions": actions, "next_states": states + norm["delta_mean"]})
        feed = {name: value for name, value in zip(self._names, self.meta_params, strict=True)}
        feed.update(states=states, actions=actions)
        dry_run_graph(m, "predict.onnx", self._predict, feed, ["next_states"], [(length, m.state_dim)])
        reference = np.zeros(len(m.reference_fields), np.float32)
        try:
            self.plan(self.meta_params, norm["state_mean"], reference)
        except FloatingPointError:
            pass  # every rollout non-finite at this state: the controller holds on such a tick
        except Exception as error:  # numpy raises several types for a planner the graphs cannot feed
            raise BundleCorruptError(f"{m.path / MANIFEST_NAME}: planner dry run failed ({one_line(error)})") from None
        self.planner = self._build_planner()  # the dry run moved its noise stream; start it afresh

    # -- adaptation ----------------------------------------------------------------------
    def adapt(self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> AdaptationResult:
        """The bundle's adaptation from the meta-parameters on a window of transitions.

        The result is accepted only when every adapted parameter is finite and the window loss
        went down; otherwise the meta-parameters come back, with the reason.
        """
        adapted, before, after = self.adaptation.adapt(self._check_window(states, actions, next_states))
        reason = adaptation_refusal(adapted, before, after)
        if reason is not None:
            return AdaptationResult(self.meta_params, before, after, False, reason)
        return AdaptationResult(list(adapted), before, after, True, "loss dropped")

    def _check_window(self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> dict[str, np.ndarray]:
        s, a = self.manifest.state_dim, len(self.manifest.action_low)
        arrays = {
            "states": np.asarray(states, dtype=np.float32),
            "actions": np.asarray(actions, dtype=np.float32),
            "next_states": np.asarray(next_states, dtype=np.float32),
        }
        length = arrays["states"].shape[0] if arrays["states"].ndim == 2 else -1
        expected = {"states": (length, s), "actions": (length, a), "next_states": (length, s)}
        for name, array in arrays.items():
            if array.ndim != 2 or array.shape != expected[name] or length < 1:
                raise WindowError(
                    f"window {name} has shape {array.shape}, expected (M, {expected[name][1]}) with M >= 1"
                )
            if not np.all(np.isfinite(array)):
                rows = sorted({int(r) for r in np.argwhere(~np.isfinite(array))[:, 0]})
                raise WindowError(f"window {name} has NaN or inf in rows {rows[:10]}")
        return arrays

    # -- prediction and planning ----------------------------------------------------------
    def predict(self, params: Sequence[np.ndarray], states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Next states ``(B, S)`` for a batch of states ``(B, S)`` and actions ``(B, A)``.

        The parameter part of the feed is built once per ``params`` object (MPPI predicts several
        times per tick with the same list), so a list must not be changed in place once predicted
        with: adaptation returns a new one."""
        if params is not self._predict_params:
            self._predict_feed = {name: value for name, value in zip(self._names, params, strict=True)}
            self._predict_params = params
        feed = self._predict_feed
        feed["states"] = np.asarray(states, dtype=np.float32)
        feed["actions"] = np.asarray(actions, dtype=np.float32)
        return self._predict.run(None, feed)[0]

    def plan(self, params: Sequence[np.ndarray], state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """One MPPI action through the model at ``params``, within the bundle's action limits."""
        return self.planner.plan(self.predict, params, np.asarray(state, np.float32), np.asarray(reference))

    def reset_planner(self) -> None:
        self.planner.reset()

    def prepare_plan(self) -> None:
        """Draw the next plan's sampling noise ahead of it (``MPPIPlanner.draw_noise``): work the
        robot does once a command is out, which leaves the plans as they were."""
        self.planner.draw_noise()

    def _build_planner(self) -> MPPIPlanner:
        """The bundle's MPPI planner; fields it cannot be built from (no tracked state, a
        feedback prior without joint positions and velocities) are a ``BundleSchemaError``."""
        m = self.manifest
        try:
            return build_tracking_planner(
                m.planner,
                m.joint_names,
                m.state_fields,
                m.reference_fields,
                m.action_low,
                m.action_high,
                1.0 / m.control_rate_hz,
            )
        except ValueError as error:
            raise BundleSchemaError(
                f"{m.path / MANIFEST_NAME}: field 'planner' cannot drive this bundle ({error})"
            ) from None


def load_meta_params(manifest: BundleManifest | ResidualBundleManifest) -> list[np.ndarray]:
    """The meta-parameters from ``meta_params.npz`` as hashed: exactly the names of
    ``bundle.json``'s ``parameters``, their shapes, float arrays only (no pickled objects)."""
    path = manifest.path / "meta_params.npz"
    try:
        with np.load(io.BytesIO(manifest.file_bytes["meta_params.npz"]), allow_pickle=False) as stored:
            keys = sorted(stored.files)
            if keys != sorted(manifest.parameter_names):
                raise BundleCorruptError(
                    f"{path}: holds arrays {keys}, bundle.json lists parameters {sorted(manifest.parameter_names)}"
                )
            raw = {name: stored[name] for name in manifest.parameter_names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, BundleCorruptError):
            raise
        raise BundleCorruptError(f"{path}: unreadable ({one_line(error)})") from None
    params = []
    for name, shape in zip(manifest.parameter_names, manifest.parameter_shapes, strict=True):
        value = raw[name]
        if value.dtype.kind != "f":
            raise BundleCorruptError(f"{path}: parameter '{name}' has dtype {value.dtype}, expected floats")
        if value.shape != shape:
            raise BundleCorruptError(f"{path}: parameter '{name}' has shape {value.shape}, bundle.json says {shape}")
        if not np.all(np.isfinite(value)):
            raise BundleCorruptError(f"{path}: parameter '{name}' holds NaN or inf")
        params.append(np.asarray(value, dtype=np.float32))
    return params


def _check_graph_inputs(
    manifest: BundleManifest, session: ort.InferenceSession, data_inputs: list[str], file_name: str
) -> None:
    expected = [*manifest.parameter_names, *data_inputs]
    actual = [i.name for i in session.get_inputs()]
    if actual != expected:
        raise BundleCorruptError(f"{manifest.path / file_name}: graph inputs {actual} != expected {expected}")
