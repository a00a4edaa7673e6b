"""Aliases: promote/rollback semantics, concurrency, and crashes mid-promote."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from augrec.errors import RegistryError
from augrec.registry.aliases import AliasBook

PROMOTES = 10


def assert_consistent(book: AliasBook, alias: str, expected_moves: int) -> None:
    """Every move was recorded, each starting where the previous one ended."""
    state = book.read()["aliases"][alias]
    history = state["history"]
    assert len(history) == expected_moves
    for before, after in zip(history, history[1:], strict=False):
        assert after["from"] == before["to"]
    assert state["tag"] == history[-1]["to"]
    assert len(state["previous"]) == expected_moves - 1


def test_promote_and_rollback_walk_back_one_step_at_a_time(tmp_path):
    book = AliasBook(tmp_path / "aliases.json")
    assert book.get("production") is None
    assert book.set("production", "m:1")["from"] is None
    book.set("production", "m:2", note="better")
    book.set("production", "m:3")
    assert book.set("production", "m:3") is None  # already there: no event
    book.set("staging", "m:9")
    assert book.current() == {"production": "m:3", "staging": "m:9"}
    assert book.rollback("production")["to"] == "m:2"
    assert book.rollback("production")["to"] == "m:1"
    with pytest.raises(RegistryError, match="no previous version"):
        book.rollback("production")
    with pytest.raises(RegistryError, match="not set"):
        book.rollback("canary")
    history = book.read()["aliases"]["production"]["history"]
    assert [e["action"] for e in history] == ["promote"] * 3 + ["rollback"] * 2
    assert history[1]["note"] == "better"
    assert book.get("staging") == "m:9"  # other aliases untouched


def test_bad_alias_names_are_refused(tmp_path):
    book = AliasBook(tmp_path / "aliases.json")
    for bad in ("Production", "prod/a", "", "-x"):
        with pytest.raises(RegistryError, match="not a valid alias"):
            book.set(bad, "m:1")


def test_a_failing_check_changes_nothing(tmp_path):
    book = AliasBook(tmp_path / "aliases.json")
    book.set("production", "m:1")

    def refuse(tag):
        raise RegistryError(f"{tag} does not exist")

    with pytest.raises(RegistryError, match="does not exist"):
        book.set("production", "m:2", check=refuse)
    assert book.get("production") == "m:1"


def test_concurrent_promotes_from_threads_lose_nothing(tmp_path):
    book = AliasBook(tmp_path / "aliases.json")

    def worker(w):
        for i in range(PROMOTES):
            AliasBook(book.path).set("production", f"m:{w}-{i}")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_consistent(book, "production", 6 * PROMOTES)


WORKER = """
import sys
from augrec.registry.aliases import AliasBook
book = AliasBook(sys.argv[1])
for i in range(int(sys.argv[3])):
    book.set("production", f"m:{sys.argv[2]}-{i}")
"""


def test_concurrent_promotes_from_processes_lose_nothing(tmp_path):
    path = tmp_path / "aliases.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(w), str(PROMOTES)])
        for w in range(4)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert_consistent(AliasBook(path), "production", 4 * PROMOTES)


def test_an_exception_at_the_rename_leaves_the_old_alias(tmp_path, monkeypatch):
    book = AliasBook(tmp_path / "aliases.json")
    book.set("production", "m:1")
    before = book.path.read_bytes()
    real_replace = os.replace

    def crash(src, dst):
        if str(dst) == str(book.path):
            raise OSError("simulated crash at the rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        book.set("production", "m:2")
    with pytest.raises(OSError, match="simulated"):
        book.set("staging", "m:2")  # a new alias is not half-created either
    assert book.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aliases.json", "aliases.json.lock"]
    monkeypatch.setattr(os, "replace", real_replace)
    book.set("production", "m:2")  # the lock was released
    assert book.get("production") == "m:2"


KILLED = """
import os, sys, time
from augrec.registry.aliases import AliasBook
book = AliasBook(sys.argv[1])
real = os.replace
def stall(src, dst):
    if str(dst) == sys.argv[1]:
        print("ready", flush=True)  # the new file is written, the rename not yet done
        time.sleep(120)
    real(src, dst)
os.replace = stall
book.set("production", "m:2")
"""


def test_a_process_killed_mid_promote_leaves_the_old_alias(tmp_path):
    book = AliasBook(tmp_path / "aliases.json")
    book.set("production", "m:1")
    before = book.path.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(book.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert book.path.read_bytes() == before
    assert json.loads(before)["aliases"]["production"]["tag"] == "m:1"
    t0 = time.monotonic()
    book.set("production", "m:3")  # the dead process's lock is gone
    assert time.monotonic() - t0 < 5
    assert book.rollback("production")["to"] == "m:1"
