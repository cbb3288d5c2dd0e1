"""Per-iteration metrics of a training run: ``metrics.csv`` (always) and TensorBoard (when installed).

Metric names are stable (``losses/…``, ``charts/…``, as CleanRL names them) so curves of
different runs and algorithms line up in TensorBoard and in the CSV columns. A run logs an
iteration's row before it checkpoints that iteration, and a resume drops every row past the
checkpoint (:func:`truncate_metrics`): whatever instant a kill lands at, ``metrics.csv`` holds
each iteration once, in order.
"""

from __future__ import annotations

import csv
import errno
import io
import os
from pathlib import Path
from typing import Any

from metarl_core.run.checkpoint_io import CheckpointWriteError, atomic_write_bytes

METRICS_NAME = "metrics.csv"


class MetricsWriter:
    """Appends one row per iteration to ``run_dir/metrics.csv`` and scalars to ``run_dir/tensorboard``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS_NAME
        self._tensorboard = _open_tensorboard(Path(run_dir))

    def log(self, iteration: int, metrics: dict[str, float]) -> None:
        """Write ``metrics`` of ``iteration``; the CSV header is written with the first row."""
        append_metrics_row(self.path, iteration, metrics)
        if self._tensorboard is not None:
            for key, value in metrics.items():
                self._tensorboard.add_scalar(key, value, iteration)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def append_metrics_row(path: Path, iteration: int, metrics: dict[str, float]) -> None:
    """Append one row to the CSV at ``path`` (its header first when the file is new). A failed
    write (a full disk) is a ``CheckpointWriteError`` naming ``path``; a torn last row is
    dropped at the next resume by :func:`truncate_metrics`."""
    new = not path.exists()
    try:
        with open(path, "a", newline="", encoding="utf-8") as stream:
            out = csv.writer(stream)
            if new:
                out.writerow(["iteration", *metrics])
            out.writerow([iteration, *metrics.values()])
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise CheckpointWriteError(error.errno or errno.EIO, f"{path}: could not be written ({reason})") from None


def truncate_metrics(run_dir: Path, last_iteration: int) -> int:
    """Keep only the rows of ``run_dir/metrics.csv`` up to ``last_iteration`` (the resumed
    checkpoint's; -1 for a run with no checkpoint yet) and return how many were dropped. The
    rewrite is atomic; a file left with no row is removed, so the next row writes its header."""
    path = Path(run_dir) / METRICS_NAME
    if not path.is_file():
        return 0
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    if not rows:
        path.unlink()
        return 0
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row and _iteration_of(row) <= last_iteration]
    if len(kept) == len(body):
        return 0
    if not kept:
        path.unlink()
        return len(body)
    text = io.StringIO()
    csv.writer(text).writerows([header, *kept])
    atomic_write_bytes(path, text.getvalue().encode("utf-8"))
    return len(body) - len(kept)


def _iteration_of(row: list[str]) -> int:
    try:
        return int(row[0])
    except ValueError:
        return 1 << 62  # a row torn by a kill mid-write: past any checkpoint, so dropped


def _open_tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional at run time; CSV metrics are always written
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
