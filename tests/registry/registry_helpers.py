"""Helpers shared by the registry tests (imported by name, like tests/features' helpers)."""

from pathlib import Path

# sasrec trained for zero epochs: random weights, the deliberately degraded candidate.
SASREC_UNTRAINED = {"epochs": 0, "hidden": 16, "layers": 1, "max_len": 20}


def train_run(data: Path, out: Path, model: str, params: dict | None = None, seed: int = 0):
    from augrec.config import TrainConfig
    from augrec.rundir import write_run
    from augrec.training.run import train_and_evaluate

    cfg = TrainConfig(model=params or {})
    result = train_and_evaluate(data, model, cfg, seed=seed, reporter=_Silent())
    return write_run(result, out, cfg, overwrite=False)


class _Silent:
    def report(self, metrics, checkpoint=None):
        pass
