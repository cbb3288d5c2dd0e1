"""What every bundle runtime's loading shares: the manifest read once, one ONNX Runtime session per
graph with the robot's settings, and a dry run of each graph before the first tick.

``AdaptiveRuntime`` (model-based bundles) and ``RecurrentRuntime`` (RL² bundles) differ in which
graphs they open and what they check of them; reading and hashing the bundle, the session
options and the dry-run checks are these, once.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import numpy as np
import onnxruntime as ort

from metarl_runtime.bundle_manifest import BundleCorruptError, BundleIntegrityError, CommonManifest, read_manifest

RUNTIME_OPTIMIZATION_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
"""The level the robot runs at; every export is verified at it and at ORT_DISABLE_ALL."""

SESSION_CONFIG_ENTRIES = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
"""ONNX Runtime session settings for spaced calls (see :func:`open_graphs`)."""


class BundleRuntime(abc.ABC):
    """A runtime built from a bundle: :meth:`load` reads and hashes it, :meth:`from_manifest`
    (one per mode) validates it and opens its graphs."""

    @classmethod
    def load(
        cls,
        path: Path | str,
        expected_robot: str | None = None,
        intra_op_threads: int = 1,
        available_joints: list[str] | None = None,
        optimization_level: ort.GraphOptimizationLevel = RUNTIME_OPTIMIZATION_LEVEL,
        trusted_public_key: Path | str | None = None,
    ) -> Self:
        """Load ``path`` after checking its digest (and, given ``trusted_public_key``, its
        signature), schema and sha256s, then everything :meth:`from_manifest` checks (one intra-op
        thread by default, see :func:`open_graphs`). Any failure raises a ``BundleError`` naming
        the file."""
        manifest = read_manifest(Path(path), trusted_public_key)
        return cls.from_manifest(manifest, expected_robot, intra_op_threads, available_joints, optimization_level)

    @classmethod
    @abc.abstractmethod
    def from_manifest(
        cls,
        manifest: CommonManifest,
        expected_robot: str | None = None,
        intra_op_threads: int = 1,
        available_joints: list[str] | None = None,
        optimization_level: ort.GraphOptimizationLevel = RUNTIME_OPTIMIZATION_LEVEL,
    ) -> Self:
        """:meth:`load` from a manifest already read (and its files hashed) by ``read_manifest``."""


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
            raise BundleCorruptError(f"{path}: not a loadable ONNX model ({one_line(error)})") from None
    return sessions


def one_line(error: BaseException) -> str:
    """An error's message on one line of at most 300 characters, for a ``BundleError``'s reason."""
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
        raise BundleCorruptError(f"{path}: dry run failed ({one_line(error)})") from None
    for name, value, shape in zip(output_names, outputs, output_shapes, strict=True):
        if tuple(value.shape) != tuple(shape):
            raise BundleCorruptError(
                f"{path}: dry run output '{name}' has shape {tuple(value.shape)}, bundle.json implies {tuple(shape)}"
            )
        if not np.all(np.isfinite(value)):
            raise BundleCorruptError(f"{path}: dry run output '{name}' is NaN or inf at the normaliser's means")
