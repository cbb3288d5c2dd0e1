"""The robot's accept rule for an adaptation: keep the meta-parameters unless it is finite and helped.

One rule for every place that adapts (the robot's runtime, and through it the log scorer; the
torch evaluation's adaptive MPC), so that simulation measures the controller the robot runs. An
adaptation on a window that lies (a sensor glitch, a payload slipping) can make the loss on that
very window go up or blow up; planning with such parameters is worse than not adapting.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def adaptation_refusal(adapted: Iterable[np.ndarray], loss_before: float, loss_after: float) -> str | None:
    """Why the ``adapted`` parameters must not be planned with, or None when they may: every
    entry and ``loss_after`` finite, and the window loss dropped (``loss_after < loss_before``)."""
    if not all(np.all(np.isfinite(p)) for p in adapted) or not np.isfinite(loss_after):
        return "adapted parameters are not finite"
    if not loss_after < loss_before:
        return f"window loss did not drop ({loss_before:.4g} -> {loss_after:.4g})"
    return None
