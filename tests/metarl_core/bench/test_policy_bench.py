"""The policy benchmark's verdicts: 'outside the seed spread' means the seed intervals do not overlap."""

from __future__ import annotations

import numpy as np

from metarl_core.bench.policy_bench import render_maml_nav, separation


def test_separation_says_outside_only_when_the_intervals_do_not_overlap() -> None:
    apart = separation(np.array([-10.0, -11.0, -12.0]), np.array([-20.0, -21.0, -22.0]))
    assert apart.startswith("+10.00") and "(outside the seed spread" in apart
    overlapping = separation(np.array([-10.0, -15.0, -20.0]), np.array([-14.0, -16.0, -18.0]))
    assert "NOT outside the seed spread" in overlapping


def test_maml_table_lists_every_step_for_both_policies() -> None:
    result = {
        "curves": {
            "MAML-PPO": [[-40.0, -12.0, -11.0, -10.0]] * 3,
            "pretrained (same PPO, no meta)": [[-38.0, -20.0, -15.0, -12.0]] * 3,
        },
        "env_steps": {"MAML-PPO": [7e6] * 3, "pretrained (same PPO, no meta)": [7e6] * 3},
        "command": "metarl bench policy --experiment maml-nav --seeds 3",
        "machine": "test",
        "figure": "docs/images/policy_maml_nav.png",
    }
    text = "\n".join(render_maml_nav(result))
    assert "| MAML-PPO | -40.00 ± 0.00 | -12.00 ± 0.00 | -11.00 ± 0.00 | -10.00 ± 0.00 | 7e+06 |" in text
    assert "vs the pretrained policy after its step: +8.00 (outside the seed spread" in text
