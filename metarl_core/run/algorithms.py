"""The training algorithms by name: what a config's ``algo`` key may say, and which learner
family trains it (``model_based`` for GrBAL, ``policy`` for MAML-PPO and RL²).

The one table of names the CLI, the policy trainer and the policy checkpoint read. It imports
nothing, so ``metarl --help`` can build its ``--algo`` choices without loading torch.
"""

from __future__ import annotations

import typing
from typing import Literal

PolicyAlgo = Literal["maml-ppo", "rl2"]
"""The policy-based meta-learners (``metarl_core.policy``)."""
POLICY_ALGOS: tuple[str, ...] = typing.get_args(PolicyAlgo)
MODEL_BASED_ALGOS = ("grbal", "grbal-residual")
"""The model-based meta-learners (``metarl_core.model_based``): GrBAL's dynamics model, and the
residual torque model of adaptive computed torque (``residual_train``)."""
DEFAULT_ALGO = "grbal"
"""What a config without an ``algo`` key trains."""
ALGOS = (*MODEL_BASED_ALGOS, *POLICY_ALGOS)
