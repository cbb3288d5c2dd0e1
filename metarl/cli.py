"""``metarl`` command line: train | eval | export | keygen | demo | bench.

The CLI only parses arguments and dispatches; each command's work lives in its own module,
imported lazily so that ``metarl --help`` stays fast. ROS-side work (the demo's nodes, the ROS
benchmark) runs in subprocesses: ``metarl_core`` never imports ROS. A bad input (config, run,
checkpoint, bundle target, full disk) ends the command with one line, ``metarl: error: …``, and
exit status 2, as argparse reports a bad argument; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from metarl_core.run.algorithms import ALGOS, DEFAULT_ALGO, POLICY_ALGOS

BENCHES = {
    "sim": "benchmarks.sim_bench",
    "runtime": "benchmarks.runtime_bench",
    "ros": "benchmarks.ros_bench",
    "policy": "benchmarks.policy_bench",
    "quality": "benchmarks.quality_bench",
    "replay": "benchmarks.replay_bench",
    "train": "benchmarks.train_bench",
    "switch": "benchmarks.switch_bench",
    "tick": "benchmarks.tick_bench",
    "husky-limits": "benchmarks.husky_limits_bench",
}


class CommandError(ValueError):
    """A command that cannot run as asked; ``main`` prints it as one line."""


def _algo_of_config(config_path: Path) -> str:
    """The ``algo`` key of a YAML config (GrBAL when absent)."""
    from metarl_core.run.config_loading import read_config_mapping

    algo = read_config_mapping(config_path).get("algo", DEFAULT_ALGO)
    if algo not in ALGOS:
        raise CommandError(f"{config_path}: algo={algo!r} is not one of {', '.join(ALGOS)}")
    return algo


def _algo_of_run(run_dir: Path) -> str:
    from metarl_core.run.run_directory import CONFIG_NAME

    config = run_dir / CONFIG_NAME
    if not config.exists():
        raise CommandError(f"{run_dir} is not a training run (no config.yaml in it)")
    return _algo_of_config(config)


def _require_device(name: str) -> None:
    """Exit with one line, before any work, when the machine lacks the ``--device`` asked for."""
    from metarl_core.run.torch_device import DeviceUnavailableError, resolve_device

    try:
        resolve_device(name)
    except DeviceUnavailableError as error:
        raise SystemExit(f"metarl: {error}") from None


def _train(args: argparse.Namespace) -> None:
    _require_device(args.device)
    algo = args.algo or _algo_of_config(args.config)
    if algo in POLICY_ALGOS:
        if args.backend is not None or args.ray_address is not None:
            raise SystemExit(f"metarl: --backend and --ray-address apply to grbal runs, not {algo}")
        run_training = importlib.import_module("metarl_core.policy.train").run_training
        run_dir = run_training(args.config, args.run_dir, args.device, args.resume)
    elif algo == "grbal-residual":
        if args.backend is not None or args.ray_address is not None:
            raise SystemExit("metarl: --backend and --ray-address apply to grbal runs, not grbal-residual")
        from metarl_core.model_based.residual_train import run_residual_training

        run_dir = run_residual_training(args.config, args.run_dir, args.device, args.resume)
    else:
        from metarl_core.model_based.train import run_training as run_grbal
        from sim.ray_collection import RayUnavailableError

        try:
            run_dir = run_grbal(args.config, args.run_dir, args.device, args.resume, args.backend, args.ray_address)
        except RayUnavailableError as error:
            raise SystemExit(f"metarl: {error}") from None
    print(f"run written to {run_dir}")


def _eval(args: argparse.Namespace) -> None:
    if args.bag is not None or args.bundle is not None:
        from metarl.eval_bag import eval_bag

        eval_bag(args)
        return
    if args.run is None:
        raise SystemExit("metarl eval: give --run RUNDIR (sim evaluation) or --bag PATH --bundle DIR (a robot log)")
    algo = _algo_of_run(args.run)
    if algo == "grbal-residual":
        raise CommandError(f"{args.run} is a grbal-residual run: measure it with metarl bench switch --runs {args.run}")
    module = "metarl_core.policy.evaluate" if algo in POLICY_ALGOS else "metarl_core.model_based.evaluate"
    table = importlib.import_module(module).run_evaluation(args.run, args.split, args.seeds)
    print(Path(table).read_text(encoding="utf-8"))


def _export(args: argparse.Namespace) -> None:
    algo = _algo_of_run(args.run)
    if algo == "rl2":
        from export.recurrent_export import export_recurrent_bundle as export_fn
    elif algo == "maml-ppo":
        raise CommandError("MAML-PPO runs are evaluated in sim; export an RL2 or GrBAL run")
    elif algo == "grbal-residual":
        from export.residual_export import export_residual_bundle as export_fn
    else:
        from export.onnx_export import export_bundle as export_fn
    print(f"bundle written to {export_fn(args.run, args.out, sign_key=args.sign_key)}")
    if args.sign_key is not None:
        print(f"signed with {args.sign_key} (bundle.json.sig)")


def _keygen(args: argparse.Namespace) -> None:
    from metarl_runtime.bundle_signature import generate_key_pair

    public = args.out.with_name(args.out.name + ".pub")
    generate_key_pair(args.out, public)
    print(f"private key (sign with it: metarl export --sign-key): {args.out}")
    print(f"public key (the robot's trusted_public_key_path): {public}")


def _demo(args: argparse.Namespace) -> None:
    _require_device(args.device)
    if args.robot == "husky":
        from metarl.husky_demo import run_husky_demo

        run_husky_demo(args)
        return
    from metarl.demo import run_demo

    run_demo(args)


def _bench(args: argparse.Namespace) -> None:
    from benchmarks.report import write_section

    section = args.bench_module.run(args)
    print(section)
    name = getattr(args, "section", None) or args.bench
    write_section(args.output, name, section)
    print(f"\nsection '{name}' written to {args.output}")


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
    train.add_argument(
        "--backend", choices=("local", "ray"), help="where episodes are collected (overrides the config's backend)"
    )
    train.add_argument(
        "--ray-address", help="Ray cluster to join with --backend ray ('auto' after `ray start`; default: a local one)"
    )
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("eval", help="evaluate a run on held-out tasks, against baselines")
    evaluate.add_argument("--run", type=Path, help="training run (with --bag: its MB model is a comparison row)")
    evaluate.add_argument("--split", choices=("interp", "extrap"), default="extrap")
    evaluate.add_argument("--seeds", type=int, default=3, help="evaluation seeds (spread is reported)")
    from metarl.eval_bag import add_bag_arguments

    add_bag_arguments(evaluate)
    evaluate.set_defaults(func=_eval)

    export = commands.add_parser("export", help="turn a run into an ONNX bundle for the robot")
    export.add_argument("--run", type=Path, required=True)
    export.add_argument("--out", type=Path, required=True, help="bundle directory (an existing one must be a bundle)")
    export.add_argument("--sign-key", type=Path, help="Ed25519 PEM private key: write bundle.json.sig (metarl keygen)")
    export.set_defaults(func=_export)

    keygen = commands.add_parser("keygen", help="make an Ed25519 key pair for signed bundles")
    keygen.add_argument("--out", type=Path, required=True, help="private key path; the public key goes to <out>.pub")
    keygen.set_defaults(func=_keygen)

    demo = commands.add_parser("demo", help="train, export and run the adaptive controller over ROS 2 in sim")
    demo.add_argument("--out", type=Path, default=Path("demo_output"))
    demo.add_argument("--config", type=Path, default=None, help="training config (default: the demo's own)")
    demo.add_argument("--device", default="cpu")
    demo.add_argument("--no-ros", action="store_true", help="run the bundle in-process instead of over ROS 2")
    demo.add_argument(
        "--robot", choices=("panda", "husky"), default="panda", help="panda: payload switch; husky: terrain change"
    )
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
    """Run one command; a bad input ends it with ``metarl: error: …`` on stderr and exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as error:  # bad configs, runs, checkpoints, bundles, targets, full disks
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"metarl: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
