"""The robot side runs a bundle in a process where torch cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from metarl_core.checkpoint import TrainedDynamics

ROOT = Path(__file__).resolve().parents[2]


def test_runtime_adapts_and_plans_without_torch(
    bundles: dict[int, tuple[TrainedDynamics, Path]], tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is not available on this robot')\n")
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from export.runtime import AdaptiveRuntime
        runtime = AdaptiveRuntime.load({str(bundles[2][1])!r}, expected_robot="panda")
        rng = np.random.default_rng(0)
        states = rng.normal(size=(6, 14)).astype(np.float32)
        result = runtime.adapt(states, rng.normal(size=(6, 7)), states + 0.01)
        action = runtime.plan(result.params, states[0], np.zeros(14))
        assert np.all(np.isfinite(action)), action
        assert "torch" not in sys.modules, "export.runtime pulled in torch"
        print("ok", result.accepted, action.shape)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")
