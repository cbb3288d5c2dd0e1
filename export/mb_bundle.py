"""A training run's MB model as a bundle, so that the log scorer runs it like any other.

``metarl eval --bag --run D`` compares the bundle with the run's MB baseline (one model trained on
every task's data, no adaptation). Exporting it through the ordinary exporter (verified against
torch like every bundle) lets the scorer stay torch-free and treat every row the same way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from export.onnx_export import export_trained_dynamics
from metarl_core.model_based.checkpoint import load_checkpoint


class NoMBModelError(ValueError):
    """The training run given as the MB comparison holds no MB baseline."""


def export_mb_bundle(run_dir: Path, out_dir: Path) -> Path:
    """Write the MB baseline of ``run_dir`` (its ``mb_params``) as a bundle at ``out_dir``."""
    model, state = load_checkpoint(Path(run_dir))
    if "mb_params" not in state:
        raise NoMBModelError(f"{run_dir}: the checkpoint holds no MB baseline (mb_params); is it a GrBAL run?")
    return export_trained_dynamics(dataclasses.replace(model, params=state["mb_params"]), Path(out_dir))
