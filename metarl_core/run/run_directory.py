"""Opening a training run's directory, the same for every algorithm: where it goes, whether an
existing run there is continued or protected, and the config it was made with. Opening also
clears what a killed run left behind: temp files of an interrupted atomic write, and
``metrics.csv`` rows past the checkpoint it resumes from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from metarl_core.run.checkpoint_io import CHECKPOINT_NAME, atomic_write_bytes, remove_stale_temp_files
from metarl_core.run.run_metrics import METRICS_NAME, truncate_metrics

CONFIG_NAME = "config.yaml"
RESUMABLE_FIELDS = ("iterations", "backend", "collection_workers", "ray_address")
"""The only config fields a resumed run may change: it can be extended, not re-specified (where
its episodes are collected changes none of them)."""


def open_run_directory(
    config: Any, run_dir: Path | None, resume: bool, load_checkpoint: Callable[[Path], tuple[Any, Any]]
) -> tuple[Path, tuple[Any, Any] | None]:
    """The run directory (default ``runs/<name>``) with ``config.yaml`` written, and the loaded
    checkpoint when ``resume`` finds one (``None`` for a new run).

    An existing checkpoint without ``resume`` is an error rather than lost; one made under another
    config (beyond the resumable fields) is refused, since its parameters, data and RNG streams
    belong to the settings they were made with. Stale ``.*.tmp`` files are removed and
    ``metrics.csv`` is cut back to the checkpoint's iteration (to nothing for a new run).
    """
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / config.name
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if checkpoint_path.exists() and not resume:
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume to continue it, or another --run-dir")
    resumed = load_checkpoint(checkpoint_path) if resume and checkpoint_path.exists() else None
    if resumed is not None:
        require_resumable(resumed[0].config, config, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(run_dir, (CHECKPOINT_NAME, CONFIG_NAME, METRICS_NAME))
    truncate_metrics(run_dir, resumed[1]["iteration"] if resumed is not None else -1)
    config_text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write_bytes(run_dir / CONFIG_NAME, config_text.encode("utf-8"))
    return run_dir, resumed


def require_resumable(saved: dict[str, Any], config: Any, run_dir: Path) -> None:
    """Refuse to resume the run in ``run_dir``, trained with config dict ``saved``, under a
    ``config`` that differs in anything but ``RESUMABLE_FIELDS``: the checkpoint's parameters,
    data and RNG streams belong to the settings they were made with.

    ``saved`` is read through the current config class first, so a field added since (with a
    default that keeps the old behaviour) is no difference.
    """
    try:
        saved = type(config).from_dict(saved, source=f"{run_dir}/checkpoint").to_dict()
    except ValueError as error:
        raise ValueError(f"{run_dir}: its checkpoint's config no longer loads ({error}); start a new run") from None
    current = config.to_dict()
    changed = sorted(k for k in current if k not in RESUMABLE_FIELDS and saved.get(k) != current[k])
    if changed:
        raise ValueError(
            f"{run_dir}: cannot resume under another config: fields {changed} differ from the run's "
            f"(only {list(RESUMABLE_FIELDS)} may change); start a new run with another --run-dir"
        )
