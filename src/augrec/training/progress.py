"""Console progress for long work: log lines with rate and ETA (readable piped, in CI, in a pod).

`ConsoleReporter` gets one line per training epoch; `StepProgress` a line every few seconds for
any loop of known length (adversarial steps, checkpoint selection).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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


class StepProgress:
    """Logs `label done/total`, seconds per step and ETA; at most one line per `every_s`.

    The first and the last step always get a line, so a slow first step is never silent.
    """

    def __init__(
        self,
        total: int,
        label: str,
        every_s: float = 15.0,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total = max(int(total), 1)
        self.label = label
        self.every_s = every_s
        self.clock = clock
        self.t0 = clock()
        self.last: float | None = None

    def update(self, done: int, detail: str = "") -> None:
        """Record that `done` of `total` steps are finished; log when a line is due."""
        now = self.clock()
        due = done in (1, self.total) or self.last is None or now - self.last >= self.every_s
        if not due:
            return
        self.last = now
        per_step = (now - self.t0) / max(done, 1)
        log.info(
            "%s %d/%d%s %.1fs/step eta %s",
            self.label,
            done,
            self.total,
            f" {detail}" if detail else "",
            per_step,
            _fmt(per_step * (self.total - done)),
        )


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
