"""The control tick run many times in process, its memory measured before and after (no ROS).

The node runs ``metarl_runtime.controllers``'s controller once per tick for as long as the robot is
on; anything it keeps per tick must be bounded. This runs the tick ``ticks`` times on a bundle
(adapting every tick, the worst case), with a warm-up first so that one-off allocations
(onnxruntime's arenas, numpy caches) are not counted, and reports the Python heap traced by
``tracemalloc`` and the process's resident memory after the warm-up and at the end:

    python -m tests.metarl_runtime.controller_soak --ticks 1000000

``tests/metarl_runtime/test_controller_soak.py`` runs a shorter soak and asserts flat memory;
``python -m tests.ros.hostile_campaign --soak-ticks N`` puts the figures in RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metarl_runtime.controllers import load_controller

WARM_UP_TICKS = 2000


@dataclass(frozen=True)
class SoakResult:
    ticks: int
    seconds: float
    traced_kb_after_warm_up: float | None
    """``None`` when the heap was not traced (tracemalloc slows a tick about fivefold)."""
    traced_kb_at_end: float | None
    rss_kb_after_warm_up: int
    rss_kb_at_end: int
    objects_after_warm_up: int
    objects_at_end: int
    holds: int

    def markdown_lines(self) -> list[str]:
        """The soak's section of RELIABILITY.md."""
        return [
            "",
            "### Soak: the control tick in process",
            "",
            f"`python -m tests.metarl_runtime.controller_soak --ticks {self.ticks}`: the runtime controller "
            f"(untrained Panda bundle, adapting every tick) ticked {self.ticks:,} times after a "
            f"{WARM_UP_TICKS}-tick warm-up, in {self.seconds:.0f} s ({self.seconds / self.ticks * 1e3:.3f} ms a tick; "
            "a shared machine, noisy).",
            "",
            "Memory is measured in the soak's own process (torch is imported there to build the untrained bundle, "
            "hence the RSS); the node's own memory under the campaign is above. The heap is not traced over the "
            "million (tracemalloc slows a tick about fivefold); `tests/metarl_runtime/test_controller_soak.py` "
            "traces it over 10,000 ticks and requires < 32 kB of growth.",
            "",
            "| memory | after warm-up | at the end | growth |",
            "|---|---|---|---|",
            *(
                [
                    f"| Python heap (tracemalloc) | {self.traced_kb_after_warm_up:.1f} kB | "
                    f"{self.traced_kb_at_end:.1f} kB | {self.traced_kb_at_end - self.traced_kb_after_warm_up:+.1f} kB |"
                ]
                if self.traced_kb_at_end is not None
                else []
            ),
            f"| Python objects (gc) | {self.objects_after_warm_up} | {self.objects_at_end} | "
            f"{self.objects_at_end - self.objects_after_warm_up:+d} |",
            f"| process RSS | {self.rss_kb_after_warm_up / 1024:.1f} MiB | {self.rss_kb_at_end / 1024:.1f} MiB | "
            f"{(self.rss_kb_at_end - self.rss_kb_after_warm_up) / 1024:+.1f} MiB |",
        ]


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_soak(bundle: Path, ticks: int, trace_heap: bool = True, seed: int = 0) -> SoakResult:
    """Tick the bundle's controller ``ticks`` times on a smooth synthetic state, with a hold
    every 1000 ticks (as a stale stream would give); memory after the warm-up and at the end
    (the Python heap only with ``trace_heap``; objects tracked by ``gc`` and RSS always)."""
    controller = load_controller(bundle)
    manifest = controller.runtime.manifest
    rng = np.random.default_rng(seed)
    state_dim, reference_dim = len(manifest.state_fields), len(manifest.reference_fields)
    phase = rng.uniform(0, 2 * np.pi, size=state_dim)
    reference = rng.normal(size=reference_dim) * 0.1

    def tick(i: int) -> None:
        if i % 1000 == 999:
            controller.hold()
            return
        controller(0.1 * np.sin(phase + 0.01 * i), reference)

    if trace_heap:
        tracemalloc.start()
    for i in range(WARM_UP_TICKS):
        tick(i)
    gc.collect()
    traced_before, rss_before, objects_before = _traced_kb(), _rss_kb(), len(gc.get_objects())
    started = time.perf_counter()
    for i in range(WARM_UP_TICKS, WARM_UP_TICKS + ticks):
        tick(i)
    seconds = time.perf_counter() - started
    gc.collect()
    traced_after, rss_after, objects_after = _traced_kb(), _rss_kb(), len(gc.get_objects())
    tracemalloc.stop()
    return SoakResult(
        ticks, seconds, traced_before, traced_after, rss_before, rss_after, objects_before, objects_after, ticks // 1000
    )


def _traced_kb() -> float | None:
    return tracemalloc.get_traced_memory()[0] / 1024 if tracemalloc.is_tracing() else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--trace-heap", action="store_true", help="also trace the Python heap (about 5x slower)")
    args = parser.parse_args(argv)
    from sim.panda_payload import PANDA
    from tests.ros.untrained_bundles import untrained_bundle

    with tempfile.TemporaryDirectory() as tmp:
        result = run_soak(untrained_bundle(PANDA, Path(tmp) / "panda"), args.ticks, args.trace_heap)
    print("\n".join(result.markdown_lines()))


if __name__ == "__main__":
    main()
