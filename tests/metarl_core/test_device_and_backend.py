"""Training is device-agnostic and backend-agnostic: ``--device cpu`` end to end to a bundle the
torch-free runtime runs, checkpoints of CPU tensors only, a clear refusal of a device this
machine lacks, and the Ray collection backend writing the very checkpoint the local one does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from metarl.cli import main
from metarl_core.model_based.checkpoint import load_checkpoint
from metarl_core.model_based.episode_collection import EpisodeCollector, planner_controller
from metarl_core.model_based.train import run_training
from metarl_core.run import checkpoint_io
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from metarl_core.run.torch_device import DeviceUnavailableError, resolve_device, tensors_to_cpu

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "configs" / "panda_tiny.yaml").read_text())


def write_config(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def all_tensors(value: object) -> list[torch.Tensor]:
    """Every tensor inside nested dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in all_tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in all_tensors(v)]
    return []


def test_device_cpu_trains_exports_and_runs_on_the_torch_free_runtime(tmp_path: Path, monkeypatch) -> None:
    config = write_config(tmp_path, iterations=1, gradient_steps_per_iteration=3, train_tasks=2)
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    main(["train", "--config", str(config), "--run-dir", str(run), "--device", "cpu"])

    # Every tensor of the file, optimiser moments and RNG states included, is a CPU tensor ...
    payload = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    stored = all_tensors({k: payload[k] for k in ("params", "step_sizes", "training_state")})
    assert {t.device.type for t in stored} == {"cpu"}
    assert any(t.dim() == 2 for t in all_tensors(payload["training_state"]["optimizer"]["state"]))

    # ... and load_checkpoint maps whatever device was saved onto the CPU.
    seen: list[object] = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        seen.append(kwargs.get("map_location"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoint_io.torch, "load", recording_load)
    model, _ = load_checkpoint(run)
    monkeypatch.undo()
    assert seen == ["cpu"] and all(t.device.type == "cpu" for t in model.params.values())

    main(["export", "--run", str(run), "--out", str(bundle)])
    # As on a robot: torch cannot be imported (a None entry in sys.modules makes import fail).
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None
        import numpy as np
        from metarl_runtime.model_runtime import AdaptiveRuntime
        runtime = AdaptiveRuntime.load({str(bundle)!r}, expected_robot="panda")
        rng = np.random.default_rng(0)
        states = rng.normal(size=(6, 14)).astype(np.float32)
        result = runtime.adapt(states, rng.normal(size=(6, 7)), states + 0.01)
        action = runtime.plan(result.params, states[0], np.zeros(14))
        assert np.all(np.isfinite(action))
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "metarl.cli", "train", "--config", str(config), "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"metarl: device 'cuda': CUDA is not available here (torch {torch.__version__}: a CPU-only build); "
        "train with --device cpu"
    ]
    assert not (tmp_path / "runs").exists(), "nothing may be written before the device is known to exist"


@pytest.mark.parametrize(
    ("name", "message"),
    [("gpu", "is not a torch device"), ("mps", "training runs on cpu or cuda"), ("cuda:0", "CUDA is not available")],
)
def test_resolve_device_refuses_by_name(name: str, message: str) -> None:
    if torch.cuda.is_available() and name.startswith("cuda"):
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceUnavailableError, match=message):
        resolve_device(name)
    with pytest.raises(DeviceUnavailableError, match=message):
        run_training(ROOT / "configs" / "panda_tiny.yaml", None, name, resume=False)


def test_tensors_to_cpu_keeps_the_structure_of_an_optimizer_state() -> None:
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([param])
    param.sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    moved = tensors_to_cpu(state)
    assert moved["param_groups"] == state["param_groups"]
    assert set(moved["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    for key, value in state["state"][0].items():
        assert moved["state"][0][key].device.type == "cpu"
        torch.testing.assert_close(moved["state"][0][key], value, rtol=0, atol=0)
    assert not tensors_to_cpu(param).requires_grad, "a checkpoint holds values, not autograd graphs"


def test_ray_backend_writes_the_same_checkpoint_as_local_collection(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config = write_config(
        tmp_path,
        iterations=2,
        gradient_steps_per_iteration=2,
        train_tasks=3,
        planner_episodes_per_iteration=2,
        episode_duration_s=1.0,
    )
    local, local_state = load_checkpoint(run_training(config, tmp_path / "local", "cpu", False))
    main(["train", "--config", str(config), "--run-dir", str(tmp_path / "ray"), "--backend", "ray"])
    on_ray, ray_state = load_checkpoint(tmp_path / "ray")
    assert yaml.safe_load((tmp_path / "ray" / "config.yaml").read_text())["backend"] == "ray"
    for mine, theirs in ((on_ray.params, local.params), (ray_state["mb_params"], local_state["mb_params"])):
        for key, value in theirs.items():
            torch.testing.assert_close(mine[key], value, rtol=0, atol=0)
    for ours, theirs in zip(ray_state["replay_buffers"], local_state["replay_buffers"], strict=True):
        assert ours.num_transitions == theirs.num_transitions
        for a, b in zip(ours.all_transitions(), theirs.all_transitions(), strict=True):
            assert (a == b).all()
    # The backend is not part of what a resumed run must keep: a Ray run continues locally.
    extended = write_config(
        tmp_path,
        iterations=3,
        gradient_steps_per_iteration=2,
        train_tasks=3,
        planner_episodes_per_iteration=2,
        episode_duration_s=1.0,
    )
    assert load_checkpoint(run_training(extended, tmp_path / "ray", "cpu", True, backend="local"))[1]["iteration"] == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)")
def test_a_run_trained_on_cuda_matches_the_cpu_run_and_checkpoints_cpu_tensors(tmp_path: Path) -> None:
    config = write_config(tmp_path, iterations=2, gradient_steps_per_iteration=5, train_tasks=2)
    on_cpu, _ = load_checkpoint(run_training(config, tmp_path / "cpu", "cpu", False))
    on_cuda_dir = run_training(config, tmp_path / "cuda", "cuda", False)
    on_cuda, _ = load_checkpoint(on_cuda_dir)
    for key, value in on_cpu.params.items():
        torch.testing.assert_close(on_cuda.params[key], value, rtol=1e-3, atol=1e-4)
    payload = torch.load(on_cuda_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    original = torch.load(on_cuda_dir / CHECKPOINT_NAME, weights_only=True)
    assert {t.device.type for t in all_tensors(original)} == {"cpu"}, "the checkpoint must hold no CUDA tensor"
    assert len(all_tensors(payload)) == len(all_tensors(original))
    # And it resumes on the GPU: the optimiser moves its CPU state back to the parameters' device.
    extended = write_config(tmp_path, iterations=3, gradient_steps_per_iteration=5, train_tasks=2)
    assert load_checkpoint(run_training(extended, on_cuda_dir, "cuda", True))[1]["iteration"] == 2


def test_unknown_backend_is_refused_by_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="field 'backend'='spark' must be 'local' or 'ray'"):
        run_training(write_config(tmp_path, backend="spark"), tmp_path / "run", "cpu", False)


def test_backend_flags_are_refused_for_policy_runs(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--backend and --ray-address apply to grbal runs, not rl2"):
        main(["train", "--config", str(ROOT / "configs" / "point_nav_rl2_tiny.yaml"), "--backend", "ray"])


def test_a_ray_collector_starts_ray_only_once_there_are_jobs() -> None:
    made: list[str] = []
    collector = EpisodeCollector(env=None, make_ray_backend=lambda: made.append("ray backend"))
    assert collector.run(planner_controller, []) == []
    assert made == [], "a resumed run with nothing left to collect must not start Ray"
