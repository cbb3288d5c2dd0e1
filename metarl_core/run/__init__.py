"""What every learner's run shares: the strict YAML config loader, the run directory, metrics
(CSV + TensorBoard), atomic checkpoint I/O and the torch device. It imports no learner."""
