"""The robot side of a bundle: load, validate, adapt, predict, plan — numpy + onnxruntime only.

Nothing here imports torch (a test runs it where ``import torch`` fails). The adaptation is a
graph run: the exported ``adapt.onnx`` computes n gradient steps of the window loss from the
meta-learned parameters, so the robot adapts exactly as training did.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from metarl_runtime.bundle_manifest import (
    MANIFEST_NAME,
    BundleCorruptError,
    BundleError,
    BundleIntegrityError,
    BundleManifest,
    BundleSchemaError,
    BundleSignatureError,
    CommonManifest,
    RobotMismatchError,
    check_robot,
    read_manifest,
)
from metarl_runtime.closed_form_rls import output_layer_loss, rls_output_layer
from metarl_runtime.mppi import MPPIPlanner, build_tracking_planner

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

RUNTIME_OPTIMIZATION_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
"""The level the robot runs at; every export is verified at it and at ORT_DISABLE_ALL."""

SESSION_CONFIG_ENTRIES = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
"""ONNX Runtime session settings for spaced calls (see :func:`open_graphs`)."""


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


class AdaptiveRuntime:
    """A loaded, validated bundle: ``adapt`` on a window, ``predict`` and ``plan`` with parameters."""

    def __init__(
        self,
        manifest: BundleManifest,
        adapt_session: ort.InferenceSession,
        predict_session: ort.InferenceSession,
        meta_params: list[np.ndarray],
    ) -> None:
        self.manifest = manifest
        self.meta_params = meta_params
        self._adapt = adapt_session
        self._predict = predict_session
        self._names = list(manifest.parameter_names)
        self._predict_params: Sequence[np.ndarray] | None = None
        self._predict_feed: dict[str, np.ndarray] = {}
        self.planner = self._build_planner()

    @classmethod
    def load(
        cls,
        path: Path | str,
        expected_robot: str | None = None,
        intra_op_threads: int = 1,
        available_joints: list[str] | None = None,
        optimization_level: ort.GraphOptimizationLevel = RUNTIME_OPTIMIZATION_LEVEL,
        trusted_public_key: Path | str | None = None,
    ) -> AdaptiveRuntime:
        """Load ``path`` after checking digest (and, given ``trusted_public_key``, signature),
        schema, sha256, robot, meta-parameters, and a dry run of both graphs whose outputs must
        have the names and shapes ``bundle.json`` implies (one intra-op thread by default, see
        :func:`open_graphs`). Any failure raises a :class:`BundleError` naming the file."""
        manifest = read_manifest(Path(path), trusted_public_key)
        return cls.from_manifest(manifest, expected_robot, intra_op_threads, available_joints, optimization_level)

    @classmethod
    def from_manifest(
        cls,
        manifest: CommonManifest,
        expected_robot: str | None = None,
        intra_op_threads: int = 1,
        available_joints: list[str] | None = None,
        optimization_level: ort.GraphOptimizationLevel = RUNTIME_OPTIMIZATION_LEVEL,
    ) -> AdaptiveRuntime:
        """:meth:`load` from a manifest already read (and its files hashed) by ``read_manifest``."""
        if not isinstance(manifest, BundleManifest):
            raise BundleSchemaError(
                f"{manifest.path / MANIFEST_NAME}: mode '{manifest.mode}' is run by "
                "metarl_runtime.recurrent_runtime.RecurrentRuntime (or metarl_runtime.controllers.load_controller)"
            )
        check_robot(manifest, expected_robot, available_joints)
        adapt_graph = "adapt.onnx" if manifest.mode == "gradient" else "features.onnx"
        sessions = open_graphs(manifest, (adapt_graph, "predict.onnx"), intra_op_threads, optimization_level)
        meta_params = _load_meta_params(manifest)
        adapt_inputs = ["states", "actions", "next_states"] if manifest.mode == "gradient" else ["states", "actions"]
        _check_graph_inputs(manifest, sessions[adapt_graph], adapt_inputs, adapt_graph)
        _check_graph_inputs(manifest, sessions["predict.onnx"], ["states", "actions"], "predict.onnx")
        runtime = cls(manifest, sessions[adapt_graph], sessions["predict.onnx"], meta_params)
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
        feed = {name: value for name, value in zip(self._names, self.meta_params, strict=True)}
        if m.mode == "gradient":
            outputs = [f"adapted.{k}" for k in self._names] + ["loss_before", "loss_after"]
            shapes = [*m.parameter_shapes, (1, 1), (1, 1)]
            window = {"states": states, "actions": actions, "next_states": states + norm["delta_mean"]}
            dry_run_graph(m, "adapt.onnx", self._adapt, {**feed, **window}, outputs, shapes)
        else:
            width = m.parameter_shapes[-2][1]
            dry_run_graph(
                m,
                "features.onnx",
                self._adapt,
                {**feed, "states": states, "actions": actions},
                ["features"],
                [(length, width)],
            )
        feed.update(states=states, actions=actions)
        dry_run_graph(m, "predict.onnx", self._predict, feed, ["next_states"], [(length, m.state_dim)])
        reference = np.zeros(len(m.reference_fields), np.float32)
        try:
            self.plan(self.meta_params, norm["state_mean"], reference)
        except FloatingPointError:
            pass  # every rollout non-finite at this state: the controller holds on such a tick
        except Exception as error:  # numpy raises several types for a planner the graphs cannot feed
            raise BundleCorruptError(f"{m.path / MANIFEST_NAME}: planner dry run failed ({_one_line(error)})") from None
        self.planner = self._build_planner()  # the dry run moved its noise stream; start it afresh

    # -- adaptation ----------------------------------------------------------------------
    def adapt(self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> AdaptationResult:
        """n inner gradient steps from the meta-parameters on a window of transitions.

        The result is accepted only when every adapted parameter is finite and the window loss
        went down; otherwise the meta-parameters come back, with the reason.
        """
        window = self._check_window(states, actions, next_states)
        if self.manifest.mode == "rls":
            adapted, before, after = self._adapt_last_layer(window)
        else:
            feed = {name: value for name, value in zip(self._names, self.meta_params, strict=True)}
            feed.update(window)
            outputs = self._adapt.run(None, feed)
            adapted, before, after = outputs[:-2], float(outputs[-2].item()), float(outputs[-1].item())
        if not all(np.all(np.isfinite(p)) for p in adapted) or not np.isfinite(after):
            return AdaptationResult(self.meta_params, before, after, False, "adapted parameters are not finite")
        if not after < before:
            return AdaptationResult(
                self.meta_params, before, after, False, f"window loss did not drop ({before:.4g} -> {after:.4g})"
            )
        return AdaptationResult(list(adapted), before, after, True, "loss dropped")

    def _adapt_last_layer(self, window: dict[str, np.ndarray]) -> tuple[list[np.ndarray], float, float]:
        """RLS mode: features from the graph, the output layer in closed form (numpy)."""
        feed = {name: value for name, value in zip(self._names, self.meta_params, strict=True)}
        feed["states"], feed["actions"] = window["states"], window["actions"]
        phi = self._adapt.run(None, feed)[0]
        norm = self.manifest.normalizer
        targets = (window["next_states"] - window["states"] - norm["delta_mean"]) / norm["delta_std"]
        weight, bias = self.meta_params[-2], self.meta_params[-1]
        new_weight, new_bias = rls_output_layer(phi, targets, weight, bias, float(self.manifest.rls_prior_precision))
        before = output_layer_loss(phi, targets, weight, bias)
        after = output_layer_loss(phi, targets, new_weight, new_bias)
        return [*self.meta_params[:-2], new_weight, new_bias], before, after

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


def open_graphs(
    manifest: CommonManifest,
    names: Iterable[str],
    intra_op_threads: int,
    optimization_level: ort.GraphOptimizationLevel,
) -> dict[str, ort.InferenceSession]:
    """One CPU session per graph file of the bundle; a file onnxruntime cannot load is corrupt.

    One intra-op thread by default in every loader: on a robot's computer the control loop gets
    one core and must not compete with itself.
    """
    if intra_op_threads < 1:
        raise ValueError(f"intra_op_threads={intra_op_threads} must be >= 1")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = optimization_level
    # A control loop calls its graphs once per period and idles in between: worker threads that
    # spin waiting for work would burn the idle time (and with more than one intra-op thread,
    # compete with the loop itself). Off for both pools; one thread has no pool to spin.
    for entry in SESSION_CONFIG_ENTRIES.items():
        options.add_session_config_entry(*entry)
    sessions = {}
    for name in names:
        path = manifest.path / name
        try:
            model = manifest.file_bytes[name]
        except KeyError:
            raise BundleIntegrityError(f"{path}: not listed in bundle.json 'files' (no sha256)") from None
        try:
            sessions[name] = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises several unrelated types for a bad model
            raise BundleCorruptError(f"{path}: not a loadable ONNX model ({_one_line(error)})") from None
    return sessions


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:300] + "…"


def dry_run_graph(
    manifest: CommonManifest,
    file_name: str,
    session: ort.InferenceSession,
    feed: dict[str, np.ndarray],
    output_names: Sequence[str],
    output_shapes: Sequence[tuple[int, ...]],
) -> None:
    """Run ``session`` once on ``feed`` and refuse, as :class:`BundleCorruptError` naming the
    graph, one that fails, whose outputs are not ``output_names`` in order, or whose outputs
    have other shapes than ``output_shapes`` or are not finite."""
    path = manifest.path / file_name
    names = [node.name for node in session.get_outputs()]
    if names != list(output_names):
        raise BundleCorruptError(f"{path}: graph outputs {names} != expected {list(output_names)}")
    try:
        outputs = session.run(None, {k: np.asarray(v, dtype=np.float32) for k, v in feed.items()})
    except Exception as error:  # onnxruntime raises several unrelated types for a bad feed
        raise BundleCorruptError(f"{path}: dry run failed ({_one_line(error)})") from None
    for name, value, shape in zip(output_names, outputs, output_shapes, strict=True):
        if tuple(value.shape) != tuple(shape):
            raise BundleCorruptError(
                f"{path}: dry run output '{name}' has shape {tuple(value.shape)}, bundle.json implies {tuple(shape)}"
            )
        if not np.all(np.isfinite(value)):
            raise BundleCorruptError(f"{path}: dry run output '{name}' is NaN or inf at the normaliser's means")


def _load_meta_params(manifest: BundleManifest) -> list[np.ndarray]:
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
        raise BundleCorruptError(f"{path}: unreadable ({_one_line(error)})") from None
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
