"""Policy-based meta-RL (MAML-PPO and RL²), measured beside the model-based GrBAL mode."""
