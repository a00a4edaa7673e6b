"""User ids never reach logs: a keyed hash stands for them (augrec.serving.redact)."""

from __future__ import annotations

import logging

import pytest


class _FailingClient:
    store = None

    def user_history(self, user_id):
        raise ConnectionError(f"redis: timeout reading user_id={user_id} (key 88{user_id})")

    def push_event(self, user_id, item_id, timestamp):
        raise ConnectionError(f"write of entity {user_id} refused")


def test_store_failures_log_a_keyed_hash_of_the_user_never_the_id(caplog, monkeypatch):
    from augrec.serving import redact
    from augrec.serving.errors import Unavailable
    from augrec.serving.online import OnlineFeatures

    monkeypatch.setattr(redact, "_key", None)
    monkeypatch.setenv(redact.LOG_KEY_ENV, "test-secret")
    user = 4815162342
    ref = redact.user_ref(user)
    assert ref.startswith("user:") and len(ref) == 17 and str(user) not in ref
    features = OnlineFeatures(_FailingClient())
    with caplog.at_level(logging.WARNING, logger="augrec.serving.online"):
        assert features.history(user) is None
        with pytest.raises(Unavailable):
            features.push(user, 7, 0)
    # the subject and the id quoted by the store's error; the push then finds the store down
    # and answers without another read (only the first failure is a warning)
    assert caplog.text.count(ref) >= 2
    assert str(user) not in caplog.text.replace(f"88{user}", "")
    assert f"88{user}" in caplog.text  # only whole numbers are replaced
    assert str(user) not in features.error.replace(f"88{user}", "")  # the last failure's text
    # The hash is keyed: another key, another reference; the same key, the same one.
    monkeypatch.setattr(redact, "_key", None)
    monkeypatch.setenv(redact.LOG_KEY_ENV, "other")
    assert redact.user_ref(user) != ref
    monkeypatch.setattr(redact, "_key", None)
    monkeypatch.setenv(redact.LOG_KEY_ENV, "test-secret")
    assert redact.user_ref(user) == ref
