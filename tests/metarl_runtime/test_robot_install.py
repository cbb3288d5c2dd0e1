"""The robot's install for real: a fresh virtual environment with only the base distribution
(``pip install <checkout>``, no extras) has no torch, PyBullet or gymnasium, and runs a bundle
through the runtime controller.

Slower than the blocked-import check in test_runtime_torch_free (a venv and three wheels from pip's
cache, ~30 s), but it is the only one that proves what ``install_requires`` pulls in.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.policy.policy_checkpoint import TrainedPolicy

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION_FILES = ("setup.py", "pyproject.toml", "README.md", "package.xml", "resource", "configs")


def distribution_packages() -> tuple[str, ...]:
    """``setup.py``'s ``TOP_LEVEL_PACKAGES``, read without running ``setup()``."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "TOP_LEVEL_PACKAGES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError("setup.py defines no TOP_LEVEL_PACKAGES")


PIP_TIMEOUT_S = 600


def copy_distribution(destination: Path) -> Path:
    """What ``setup.py`` packages, copied so that building the wheel leaves the checkout untouched."""
    destination.mkdir()
    for name in DISTRIBUTION_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        else:
            shutil.copy2(source, destination / name)
    for package in distribution_packages():
        shutil.copytree(ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


@pytest.fixture(scope="module")
def robot_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh venv holding ``metarl`` as the robot installs it: base only."""
    work = tmp_path_factory.mktemp("robot_install")
    source = copy_distribution(work / "metarl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return python


def run_on_the_robot(python: Path, script: str, cwd: Path) -> subprocess.CompletedProcess:
    """``script`` in the robot venv, away from the checkout (whose packages would shadow the install)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
def test_the_base_install_has_no_torch_pybullet_or_gymnasium(robot_python: Path, tmp_path: Path) -> None:
    done = run_on_the_robot(
        robot_python,
        """
        import importlib.util
        training_only = ("torch", "pybullet", "gymnasium", "onnx", "matplotlib")
        print(sorted(m for m in training_only if importlib.util.find_spec(m)))
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.integration
def test_the_base_install_runs_a_model_based_bundle(
    robot_python: Path, bundles: dict[int, tuple[TrainedDynamics, Path]], tmp_path: Path
) -> None:
    done = run_on_the_robot(
        robot_python,
        f"""
        import sys
        import numpy as np
        import metarl_runtime.controllers
        from metarl_runtime.controllers import OnlineAdaptiveController, load_controller
        assert "site-packages" in metarl_runtime.controllers.__file__, metarl_runtime.controllers.__file__
        controller = load_controller({str(bundles[2][1])!r}, expected_robot="panda")
        assert isinstance(controller, OnlineAdaptiveController)
        rng = np.random.default_rng(0)
        reference = np.full(14, 0.1)
        commands = [controller(rng.normal(scale=0.1, size=14), reference) for _ in range(12)]
        assert all(c.shape == (7,) and np.all(np.isfinite(c)) for c in commands), commands
        assert controller.diagnostic_values(), "no diagnostics after adapting"
        print("ok", sorted(m for m in ("torch", "pybullet", "gymnasium") if m in sys.modules))
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok []"


@pytest.mark.integration
def test_the_base_install_runs_a_recurrent_bundle(
    robot_python: Path, recurrent_bundle: tuple[TrainedPolicy, Path], tmp_path: Path
) -> None:
    done = run_on_the_robot(
        robot_python,
        f"""
        import numpy as np
        from metarl_runtime.controllers import RecurrentPolicyController, load_controller
        controller = load_controller({str(recurrent_bundle[1])!r}, expected_robot="panda")
        assert isinstance(controller, RecurrentPolicyController)
        commands = [controller(np.zeros(14), np.full(14, 0.1)) for _ in range(5)]
        assert all(np.all(np.isfinite(c)) for c in commands), commands
        print("ok")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
