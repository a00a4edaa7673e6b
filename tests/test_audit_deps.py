"""scripts/audit_deps.py: the allow-list and the verdict on pip-audit's report (offline)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
try:
    import audit_deps
finally:
    sys.path.pop(0)


def _dep(name, version, *vulns, skip=None):
    if skip:
        return {"name": name, "skip_reason": skip}
    return {"name": name, "version": version, "vulns": list(vulns)}


def _vuln(id, *aliases, fix=("2.0",)):
    return {"id": id, "aliases": list(aliases), "fix_versions": list(fix), "description": "x"}


def test_the_committed_allow_list_parses_and_every_entry_has_a_reason():
    allowed = audit_deps.read_allow_list((REPO / ".ci" / "pip-audit-allow.txt").read_text())
    assert all(len(a.reason) >= 10 for a in allowed.values())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("PYSEC-2024-1 torch", "real reason"),
        ("PYSEC-2024-1 torch ok", "real reason"),
        ("torch PYSEC-2024-1 weights_only loads only", "not an advisory id"),
    ],
)
def test_an_entry_without_a_reason_or_id_is_refused(line, message):
    with pytest.raises(ValueError, match=f"line 2: .*{message}"):
        audit_deps.read_allow_list(f"# header\n{line}\n")


def test_verdict_allows_reviewed_advisories_by_id_or_alias_and_fails_on_others():
    allowed = audit_deps.read_allow_list(
        "GHSA-aaaa-bbbb-cccc torch we never torch.load untrusted files (reviewed)\n"
        "PYSEC-2020-1 gone this package was removed long ago (reviewed)\n"
    )
    report = {
        "dependencies": [
            _dep("torch", "2.13.0", _vuln("PYSEC-2026-9", "GHSA-aaaa-bbbb-cccc")),
            _dep("numpy", "2.0.0"),
            _dep("localpkg", None, skip="Dependency not found on PyPI"),
        ]
    }
    status, lines = audit_deps.evaluate(report, allowed)
    assert status == audit_deps.OK
    assert "2 of 3 distributions audited" in lines[0]
    assert any("allowed torch 2.13.0: PYSEC-2026-9" in line for line in lines)
    assert any("stale allow-list entry" in line and "PYSEC-2020-1" in line for line in lines)
    assert any("not audited: Dependency not found" in line for line in lines)
    report["dependencies"].append(_dep("jinja2", "3.0.0", _vuln("PYSEC-2026-7", fix=("3.1.6",))))
    status, lines = audit_deps.evaluate(report, allowed)
    assert status == audit_deps.FOUND
    assert any("ADVISORY jinja2 3.0.0: PYSEC-2026-7 (fixed in: 3.1.6)" in line for line in lines)


def test_an_allow_entry_for_another_package_does_not_cover_an_advisory():
    allowed = audit_deps.read_allow_list("PYSEC-2026-9 numpy reviewed for numpy only, not torch\n")
    report = {"dependencies": [_dep("torch", "2.13.0", _vuln("PYSEC-2026-9"))]}
    assert audit_deps.evaluate(report, allowed)[0] == audit_deps.FOUND


def test_nothing_audited_is_not_a_pass():
    """pip-audit says "No known vulnerabilities found" when PyPI answers 404 for everything."""
    report = {
        "dependencies": [_dep(n, None, skip=f"Dependency not found on PyPI: {n}") for n in "ab"]
    }
    status, lines = audit_deps.evaluate(report, {})
    assert status == audit_deps.UNAUDITED and "NOTHING WAS AUDITED" in lines[-1]


def test_an_unanswering_source_stops_the_audit_with_status_2(monkeypatch, capsys):
    monkeypatch.setattr(audit_deps, "probe", lambda service: f"{service}: HTTP 404")
    assert audit_deps.main([]) == audit_deps.UNAUDITED
    assert "NOT RUN" in capsys.readouterr().err
