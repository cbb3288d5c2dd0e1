"""The robot side runs a bundle in a process where torch cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.policy.policy_checkpoint import TrainedPolicy

ROOT = Path(__file__).resolve().parents[2]


def run_without_torch(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter where ``import torch`` raises, as on a robot."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is not available on this robot')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), str(ROOT)]))
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_runtime_adapts_and_plans_without_torch(
    bundles: dict[int, tuple[TrainedDynamics, Path]], tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from metarl_runtime.model_runtime import AdaptiveRuntime
        runtime = AdaptiveRuntime.load({str(bundles[2][1])!r}, expected_robot="panda")
        rng = np.random.default_rng(0)
        states = rng.normal(size=(6, 14)).astype(np.float32)
        result = runtime.adapt(states, rng.normal(size=(6, 7)), states + 0.01)
        action = runtime.plan(result.params, states[0], np.zeros(14))
        assert np.all(np.isfinite(action)), action
        assert "torch" not in sys.modules, "metarl_runtime.model_runtime pulled in torch"
        print("ok", result.accepted, action.shape)
        """
    )
    done = run_without_torch(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_recurrent_bundle_runs_without_torch(recurrent_bundle: tuple[TrainedPolicy, Path], tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from metarl_runtime.controllers import RecurrentPolicyController, load_controller
        controller = load_controller({str(recurrent_bundle[1])!r}, expected_robot="panda")
        assert isinstance(controller, RecurrentPolicyController)
        state, reference = np.zeros(14), np.full(14, 0.1)
        commands = [controller(state, reference) for _ in range(5)]
        assert all(np.all(np.isfinite(c)) and np.all(np.abs(c) <= 87.0) for c in commands), commands
        assert float(controller.diagnostic_values()["hidden_norm"]) > 0.0
        assert "torch" not in sys.modules, "the recurrent runtime pulled in torch"
        print("ok", commands[-1].shape)
        """
    )
    done = run_without_torch(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")
