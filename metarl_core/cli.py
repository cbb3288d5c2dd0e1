"""``metarl`` command line: train | eval | export | demo | bench.

The CLI only parses arguments and dispatches; each command's work lives in its own module,
imported lazily so that ``metarl --help`` stays fast. ROS-side work (the demo's nodes, the ROS
benchmark) runs in subprocesses: ``metarl_core`` never imports ROS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import yaml

POLICY_ALGOS = ("maml-ppo", "rl2")
ALGOS = ("grbal", *POLICY_ALGOS)
BENCHES = {
    "sim": "metarl_core.bench.sim_bench",
    "runtime": "metarl_core.bench.runtime_bench",
    "ros": "metarl_core.bench.ros_bench",
    "policy": "metarl_core.bench.policy_bench",
    "quality": "metarl_core.bench.quality_bench",
    "switch": "metarl_core.bench.switch_bench",
}


def _algo_of_config(config_path: Path) -> str:
    """The ``algo`` key of a YAML config (GrBAL when absent)."""
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SystemExit(f"metarl: config file not found: {config_path}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"metarl: {config_path} must hold a YAML mapping, got {type(data).__name__}")
    algo = data.get("algo", "grbal")
    if algo not in ALGOS:
        raise SystemExit(f"metarl: {config_path}: algo={algo!r} is not one of {', '.join(ALGOS)}")
    return algo


def _algo_of_run(run_dir: Path) -> str:
    config = run_dir / "config.yaml"
    if not config.exists():
        raise SystemExit(f"metarl: {run_dir} is not a training run (no config.yaml in it)")
    return _algo_of_config(config)


def _train(args: argparse.Namespace) -> None:
    algo = args.algo or _algo_of_config(args.config)
    module = "metarl_core.policy.train" if algo in POLICY_ALGOS else "metarl_core.training"
    run_training = importlib.import_module(module).run_training
    run_dir = run_training(args.config, args.run_dir, args.device, args.resume)
    print(f"run written to {run_dir}")


def _eval(args: argparse.Namespace) -> None:
    algo = _algo_of_run(args.run)
    module = "metarl_core.policy.evaluate" if algo in POLICY_ALGOS else "metarl_core.evaluation"
    table = importlib.import_module(module).run_evaluation(args.run, args.split, args.seeds)
    print(Path(table).read_text(encoding="utf-8"))


def _export(args: argparse.Namespace) -> None:
    algo = _algo_of_run(args.run)
    if algo == "rl2":
        from export.recurrent_export import export_recurrent_bundle as export_fn
    elif algo == "maml-ppo":
        raise SystemExit("metarl: MAML-PPO runs are evaluated in sim; export an RL2 or GrBAL run")
    else:
        from export.onnx_export import export_bundle as export_fn
    print(f"bundle written to {export_fn(args.run, args.out)}")


def _demo(args: argparse.Namespace) -> None:
    from metarl_core.demo import run_demo

    run_demo(args)


def _bench(args: argparse.Namespace) -> None:
    from metarl_core.bench.report import write_section

    section = args.bench_module.run(args)
    print(section)
    write_section(args.output, args.bench, section)
    print(f"\nsection '{args.bench}' written to {args.output}")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The full parser; only the benchmark named in ``argv`` is imported for its options."""
    parser = argparse.ArgumentParser(prog="metarl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="meta-train from a YAML config")
    train.add_argument("--config", type=Path, required=True, help="YAML config, e.g. configs/panda.yaml")
    train.add_argument("--algo", choices=ALGOS, help="overrides the config's algo key")
    train.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    train.add_argument("--run-dir", type=Path, help="where checkpoints and metrics go (default runs/<name>)")
    train.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("eval", help="evaluate a run on held-out tasks, against baselines")
    evaluate.add_argument("--run", type=Path, required=True)
    evaluate.add_argument("--split", choices=("interp", "extrap"), default="extrap")
    evaluate.add_argument("--seeds", type=int, default=3, help="evaluation seeds (spread is reported)")
    evaluate.set_defaults(func=_eval)

    export = commands.add_parser("export", help="turn a run into an ONNX bundle for the robot")
    export.add_argument("--run", type=Path, required=True)
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(func=_export)

    demo = commands.add_parser("demo", help="train, export and run the adaptive controller over ROS 2 in sim")
    demo.add_argument("--out", type=Path, default=Path("demo_output"))
    demo.add_argument("--config", type=Path, default=None, help="training config (default: the demo's own)")
    demo.add_argument("--device", default="cpu")
    demo.add_argument("--no-ros", action="store_true", help="run the bundle in-process instead of over ROS 2")
    demo.set_defaults(func=_demo)

    bench = commands.add_parser("bench", help="measure speed and adaptation quality; results go to BENCHMARKS.md")
    bench_kinds = bench.add_subparsers(dest="bench", required=True)
    for name, module_name in BENCHES.items():
        kind = bench_kinds.add_parser(name)
        kind.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
        kind.set_defaults(func=_bench)
        if argv[:2] == ["bench", name]:
            module = importlib.import_module(module_name)
            module.add_arguments(kind)
            kind.set_defaults(bench_module=module)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
