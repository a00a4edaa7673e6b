"""Console progress for training: one line per epoch with loss, validation and ETA."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("augrec.train")


class ConsoleReporter:
    """Logs each epoch; the ETA assumes every remaining epoch runs (early stopping ends sooner)."""

    def __init__(self, total_epochs: int, prefix: str = ""):
        self.total = total_epochs
        self.prefix = prefix

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
        """Print one line for the epoch."""
        epoch = int(metrics["epoch"])
        per_epoch = metrics["elapsed"] / max(epoch, 1)
        eta = per_epoch * (self.total - epoch)
        valid = (
            f" valid ndcg@10 {metrics['valid_ndcg@10']:.4f}"
            f" (best {metrics['best_valid_ndcg@10']:.4f} @ {metrics['best_epoch']})"
            if "valid_ndcg@10" in metrics
            else ""
        )
        log.info(
            "%sepoch %d/%d loss %.4f%s %.1fs/epoch eta <= %s",
            self.prefix,
            epoch,
            self.total,
            metrics["loss"],
            valid,
            per_epoch,
            _fmt(eta),
        )


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
