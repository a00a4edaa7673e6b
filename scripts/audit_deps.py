"""Audit the installed environment for known vulnerabilities (pip-audit), with an allow-list.

    python scripts/audit_deps.py                   # the environment of this interpreter
    python scripts/audit_deps.py --service osv     # OSV instead of PyPI's JSON API
    python scripts/audit_deps.py --report out.json # keep pip-audit's JSON report

Exit status: 0 no advisory outside the allow-list; 1 an advisory nobody reviewed (each is
printed with its fix versions), or an allow-list entry without a reason; 2 nothing could be
audited (the advisory source does not answer), which is not a pass.

The allow-list (`.ci/pip-audit-allow.txt`) holds one accepted advisory per line:
`ID PACKAGE reason...`, the reason saying why the advisory does not reach us or what
mitigates it, and who reviewed it when. Entries that match nothing installed any more are
reported as stale, so the list shrinks when packages are upgraded.

pip-audit asks its advisory source about every installed distribution. PyPI's per-release
JSON API (`/pypi/NAME/VERSION/json`) answers 404 from our development and CI machines, and
pip-audit then marks every package "not found on PyPI" and reports no vulnerability; OSV's
API does not resolve there. So the source is probed first, with one request, and the audit
stops with status 2 when it does not answer or when pip-audit could audit nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLOW = REPO / ".ci" / "pip-audit-allow.txt"
PROBES = {
    # What pip-audit itself requests, for a release that certainly exists.
    "pypi": lambda: urllib.request.Request(
        f"https://pypi.org/pypi/pip-audit/{metadata.version('pip-audit')}/json"
    ),
    "osv": lambda: urllib.request.Request(
        "https://api.osv.dev/v1/query",
        data=json.dumps({"package": {"name": "pip-audit", "ecosystem": "PyPI"}}).encode(),
        headers={"content-type": "application/json"},
    ),
}
ID = re.compile(r"^(PYSEC|GHSA|CVE|OSV)-[\w-]+$")
OK, FOUND, UNAUDITED = 0, 1, 2


@dataclass(frozen=True)
class Allowed:
    """One reviewed advisory."""

    id: str
    package: str
    reason: str


def read_allow_list(text: str) -> dict[str, Allowed]:
    """Entries by advisory id; raises ValueError naming the line of a bad entry."""
    out: dict[str, Allowed] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or len(parts[2]) < 10:
            raise ValueError(f"line {lineno}: expected `ID PACKAGE reason`, with a real reason")
        vuln, package, reason = parts
        if not ID.match(vuln):
            raise ValueError(f"line {lineno}: {vuln!r} is not an advisory id (PYSEC-/GHSA-/CVE-)")
        out[vuln] = Allowed(vuln, package.lower(), reason)
    return out


def probe(service: str, timeout: float = 10) -> str | None:
    """None when the advisory source answers, else why not."""
    try:
        with urllib.request.urlopen(PROBES[service](), timeout=timeout) as resp:
            resp.read(1)
        return None
    except urllib.error.HTTPError as exc:
        return f"{service}: HTTP {exc.code} from {exc.url}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{service}: {getattr(exc, 'reason', exc)}"


def evaluate(report: dict, allowed: dict[str, Allowed]) -> tuple[int, list[str]]:
    """Exit status and the lines to print, from pip-audit's JSON report."""
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    lines = [f"pip-audit: {audited} of {len(deps)} distributions audited"]
    if deps and not audited:
        lines.append(
            f"NOTHING WAS AUDITED: every distribution was skipped "
            f"(e.g. {skipped[0]['skip_reason']}); the advisory source is not usable here"
        )
        return UNAUDITED, lines
    for dep in skipped:
        lines.append(f"  not audited: {dep['skip_reason']}")
    status, matched = OK, set()
    for dep in deps:
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            hit = next((allowed[i] for i in sorted(ids) if i in allowed), None)
            where = f"{dep['name']} {dep['version']}: {vuln['id']}"
            if hit is not None and hit.package == dep["name"].lower():
                matched.add(hit.id)
                lines.append(f"  allowed {where} ({hit.reason})")
                continue
            status = FOUND
            fix = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
            lines.append(
                f"  ADVISORY {where} (fixed in: {fix}) {vuln.get('description', '')[:200]}"
            )
    for stale in sorted(set(allowed) - matched):
        lines.append(f"  stale allow-list entry (matches nothing installed): {stale}")
    lines.append("no advisory outside the allow-list" if status == OK else "unreviewed advisories")
    return status, lines


def main(argv: list[str] | None = None) -> int:
    """Probe, audit, judge against the allow-list."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", choices=sorted(PROBES), default="pypi")
    parser.add_argument("--allow-list", type=Path, default=ALLOW)
    parser.add_argument("--report", type=Path, help="also write pip-audit's JSON report here")
    args = parser.parse_args(argv)
    try:
        allowed = read_allow_list(args.allow_list.read_text())
    except (OSError, ValueError) as exc:
        print(f"audit: {args.allow_list}: {exc}", file=sys.stderr)
        return FOUND
    try:
        metadata.version("pip-audit")
    except metadata.PackageNotFoundError:
        print(
            "audit: NOT RUN: pip-audit is not installed (pip install -e '.[dev]')", file=sys.stderr
        )
        return UNAUDITED
    why = probe(args.service)
    if why is not None:
        print(f"audit: NOT RUN: the advisory source does not answer ({why})", file=sys.stderr)
        return UNAUDITED
    with tempfile.TemporaryDirectory() as tmp:
        out = args.report or Path(tmp) / "report.json"
        proc = subprocess.run(
            [sys.executable, "-m", "pip_audit", "--local", "--skip-editable", "--format=json"]
            + [f"--vulnerability-service={args.service}", "--progress-spinner=off", f"-o={out}"],
            capture_output=True,
            text=True,
        )
        if not out.exists() or not out.stat().st_size:
            print(f"audit: NOT RUN: pip-audit failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return UNAUDITED
        status, lines = evaluate(json.loads(out.read_text()), allowed)
    print("\n".join(lines), file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
