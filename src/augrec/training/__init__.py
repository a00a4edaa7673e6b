"""Training: the run orchestration, plain-torch loops and (later) the Ray Train launcher."""
