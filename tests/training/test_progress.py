"""Progress lines for long loops: first and last step always, then at most one per interval."""

import logging

from augrec.training.progress import StepProgress


def test_step_progress_logs_rate_and_eta_without_flooding(caplog):
    now = [0.0]
    progress = StepProgress(100, "adversarial step", every_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="augrec.train"):
        for step in range(1, 101):
            now[0] += 2.0  # two seconds a step
            progress.update(step, "reward 0.1")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "adversarial step 1/100 reward 0.1 2.0s/step eta 3m18s"
    assert lines[-1].startswith("adversarial step 100/100") and lines[-1].endswith("eta 0m00s")
    assert 15 <= len(lines) <= 25  # every ~10 s of 200 s, not every step
