"""The ``--device`` of a training run, checked before any work starts.

torch accepts ``torch.device("cuda")`` on a machine without CUDA and fails only at the first
tensor moved there, with a traceback from deep inside training; a run asked for a device it
cannot have should instead stop at once with one line that says why and what to pass.
"""

from __future__ import annotations

from typing import Any

import torch

SUPPORTED_TYPES = ("cpu", "cuda")


class DeviceUnavailableError(ValueError):
    """The requested device is malformed, of an unsupported type, or not on this machine."""


def resolve_device(name: str) -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:N") as a ``torch.device`` this machine has, or
    ``DeviceUnavailableError`` naming the device and what to pass instead."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DeviceUnavailableError(f"device {name!r} is not a torch device; expected cpu, cuda or cuda:N") from None
    if device.type not in SUPPORTED_TYPES:
        raise DeviceUnavailableError(f"device {name!r}: training runs on cpu or cuda (cuda:N), not {device.type}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "no CUDA GPU is visible" if torch.backends.cuda.is_built() else "a CPU-only build"
            raise DeviceUnavailableError(
                f"device {name!r}: CUDA is not available here (torch {torch.__version__}: {why}); "
                "train with --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceUnavailableError(
                f"device {name!r}: this machine has {count} CUDA device(s), cuda:0..{count - 1}"
            )
    return device


def tensors_to_cpu(value: Any) -> Any:
    """``value`` (nested dicts, lists and tuples, e.g. an optimiser's ``state_dict``) with every
    tensor moved to the CPU: what a checkpoint must hold, so that it loads on a machine without
    the training device (the optimiser moves its state back to its parameters' device on load)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: tensors_to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(tensors_to_cpu(v) for v in value)
    return value
