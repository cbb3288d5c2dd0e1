"""Per-iteration metrics of a training run: ``metrics.csv`` (always) and TensorBoard (when installed).

Metric names are stable (``losses/…``, ``charts/…``, as CleanRL names them) so curves of
different runs and algorithms line up in TensorBoard and in the CSV columns.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class MetricsWriter:
    """Appends one row per iteration to ``run_dir/metrics.csv`` and scalars to ``run_dir/tensorboard``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self._tensorboard = _open_tensorboard(Path(run_dir))

    def log(self, iteration: int, metrics: dict[str, float]) -> None:
        """Write ``metrics`` of ``iteration``; the CSV header is written with the first row."""
        new = not self.path.exists()
        with open(self.path, "a", newline="", encoding="utf-8") as stream:
            out = csv.writer(stream)
            if new:
                out.writerow(["iteration", *metrics])
            out.writerow([iteration, *metrics.values()])
        if self._tensorboard is not None:
            for key, value in metrics.items():
                self._tensorboard.add_scalar(key, value, iteration)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def _open_tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional at run time; CSV metrics are always written
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
