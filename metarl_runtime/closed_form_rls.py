"""The robot's last-layer RLS adaptation in numpy: the closed form of
``metarl_core.model_based.adaptation.last_layer_rls`` over features computed by ``features.onnx``."""

from __future__ import annotations

import numpy as np


def rls_output_layer(
    phi: np.ndarray,
    targets: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    prior_precision: float,
    forgetting: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean of the output layer ``(S, H)``, ``(1, S)`` given features ``(M, H)`` (oldest
    row first), each row weighted ``forgetting``ᵃ by its age a."""
    phi = np.concatenate([phi, np.ones((len(phi), 1))], axis=1).astype(np.float64)
    targets = targets.astype(np.float64)
    if forgetting < 1.0:
        root_weights = np.sqrt(forgetting) ** np.arange(len(phi) - 1, -1, -1, dtype=np.float64)[:, None]
        phi, targets = phi * root_weights, targets * root_weights
    prior = np.concatenate([weight, bias.T], axis=1).astype(np.float64)
    gram = phi.T @ phi + prior_precision * np.eye(phi.shape[1])
    rhs = targets.T @ phi + prior_precision * prior
    posterior = np.linalg.solve(gram, rhs.T).T
    return posterior[:, :-1].astype(np.float32), posterior[:, -1:].T.astype(np.float32)


def output_layer_loss(phi: np.ndarray, targets: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> float:
    """Window MSE of normalised state changes predicted from features (same as ``window_loss``)."""
    prediction = phi.astype(np.float64) @ weight.T.astype(np.float64) + bias.astype(np.float64)
    return float(np.mean((prediction - targets) ** 2))
