"""Atomic writes leave files and folders with the modes the user's umask gives any file."""

import os
import stat

import pytest

from augrec.io import atomic_dir, atomic_write_text, write_json


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_dir_and_files_follow_umask(tmp_path, umask):
    out = tmp_path / "run"
    with atomic_dir(out) as tmp:
        write_json(tmp / "metrics.json", {"a": 1})
        (tmp / "plain.txt").write_text("x")
    assert _mode(out) == 0o777 & ~umask
    assert _mode(out / "metrics.json") == 0o666 & ~umask
    assert _mode(out / "metrics.json") == _mode(out / "plain.txt")


def test_overwritten_dir_and_text_follow_umask(tmp_path, umask):
    out = tmp_path / "run"
    out.mkdir(mode=0o700)
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "f").write_text("x")
    assert _mode(out) == 0o777 & ~umask
    atomic_write_text(tmp_path / "report.html", "<html/>")
    assert _mode(tmp_path / "report.html") == 0o666 & ~umask
    assert os.umask(umask) == umask  # reading the umask left it as it was
