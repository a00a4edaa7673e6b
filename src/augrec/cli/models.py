"""`augrec models ...` and `augrec gate`: the registry and the validation gate from the one CLI.

The logic lives in `store`, `aliases` and `gate`; these commands parse options and print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from augrec.cli.common import Home, console

if TYPE_CHECKING:
    from augrec.registry.objstore import ObjectRegistry
    from augrec.registry.store import ModelVersion, Registry

models_app = typer.Typer(
    help="The model registry: immutable versions with lineage in the BentoML model store "
    "($BENTOML_HOME), and aliases such as [cyan]production[/] that point at them. Typical "
    "flow: [cyan]augrec gate --candidate RUN[/] then [cyan]augrec models register RUN "
    "--require-gate[/] then [cyan]augrec models promote VERSION[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

Alias = Annotated[str, typer.Option("--alias", help="Alias to move, e.g. production or staging.")]
Note = Annotated[str, typer.Option("--note", help="Why; kept in the alias history.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Ref = Annotated[
    str,
    typer.Argument(
        help="An alias (production), a tag (augrec-beauty-sasrec:VERSION), a model name "
        "(its latest version) or a version; a unique prefix of the version will do.",
        show_default=False,
    ),
]


def _registry(home: str | None) -> Registry | ObjectRegistry:
    from augrec.registry.store import open_registry

    return open_registry(home)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return "-" if value is None else str(value)


# ---- models ---------------------------------------------------------------------------------


@models_app.command("list")
def list_models(home: Home = None, as_json: AsJson = False) -> None:
    """List every registered version, oldest first, with its test metrics, gate and aliases."""
    from rich.table import Table

    reg = _registry(home)
    versions = reg.versions()
    aliases = reg.aliases.current()
    if as_json:
        rows = [
            {
                "tag": v.tag,
                "created_at": v.created_at.isoformat(timespec="seconds"),
                "aliases": sorted(a for a, t in aliases.items() if t == v.tag),
                **{k: v.labels.get(k) for k in ("dataset", "model", "gate")},
                "test": v.metadata.get("test", {}),
            }
            for v in versions
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"registered models ({reg.home})")
    for col in ("tag", "dataset", "model", "created (UTC)", "ndcg@10", "hr@10", "gate", "aliases"):
        table.add_column(col, justify="right" if col in ("ndcg@10", "hr@10") else "left")
    for v in versions:
        test = v.metadata.get("test", {})
        table.add_row(
            v.tag,
            v.labels.get("dataset", "-"),
            v.labels.get("model", "-"),
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            _fmt(test.get("ndcg@10")),
            _fmt(test.get("hr@10")),
            v.labels.get("gate", "-"),
            ", ".join(sorted(a for a, t in aliases.items() if t == v.tag)),
        )
    console().print(table)
    if not versions:
        typer.echo("no versions yet: augrec models register RUN_DIR")


def describe(reg: Registry | ObjectRegistry, v: ModelVersion) -> dict[str, Any]:
    """Everything `show` prints, as one JSON-ready document."""
    return {
        "tag": v.tag,
        "path": v.location,
        "created_at": v.created_at.isoformat(timespec="seconds"),
        "aliases": reg.aliases_of(v.tag),
        "integrity": v.verify() or "ok",
        "labels": v.labels,
        "registered_from": v.metadata.get("run_dir"),
        "metrics": {"test": v.metrics.get("test", {}), "valid": v.metrics.get("valid", {})},
        "manifest": v.manifest,
        "features": v.features,
        "gate": v.gate,
    }


@models_app.command("show")
def show(ref: Ref, home: Home = None, as_json: AsJson = False) -> None:
    """Show one version: metrics, gate verdict and full lineage (enough to reproduce it).

    Lineage is the run manifest: data path and content fingerprint (per file), split and
    protocol, model and hyper-parameters, seed, the resolved config, the command that ran and
    the one that reproduces it, code version (git commit), library versions and timings.
    """
    from rich.table import Table

    from augrec.registry.manifest import features_summary

    reg = _registry(home)
    v = reg.get(ref)
    doc = describe(reg, v)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    out = console()
    head = Table(title=v.tag, show_header=False)
    m = v.manifest
    data = m.get("data", {})
    code = m.get("code", {})
    rows = [
        ("aliases", ", ".join(doc["aliases"]) or "-"),
        ("registered", doc["created_at"]),
        ("path", doc["path"]),
        ("integrity", "ok" if doc["integrity"] == "ok" else "; ".join(doc["integrity"])),
        ("registered from", doc["registered_from"]),
        ("run id", m.get("run_id")),
        ("dataset", m.get("dataset")),
        ("data", f"{data.get('path')} ({data.get('format')})"),
        ("data fingerprint", data.get("fingerprint")),
        *(
            (f"  {f['name']}", f"sha256 {f['sha256']}  {f['bytes']} bytes")
            for f in data.get("files", [])
        ),
        ("split", m.get("split")),
        ("protocol", m.get("protocol")),
        ("model", m.get("model", {}).get("name")),
        ("params", m.get("model", {}).get("params")),
        ("seed", m.get("seeds", {}).get("seed")),
        ("config", m.get("config")),
        ("trainer", m.get("trainer")),
        ("command", " ".join(m.get("command", {}).get("argv", []))),
        ("reproduce", m.get("command", {}).get("reproduce")),
        (
            "code",
            f"augrec {code.get('version')}, commit {code.get('git_commit') or 'unknown'}"
            + (" (uncommitted changes)" if code.get("git_dirty") else ""),
        ),
        ("features", m.get("features") or features_summary(v.features)),
        ("augmentation", m.get("augmentation")),
        ("libraries", ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items() if v)),
        ("timings", m.get("timings")),
    ]
    for key, value in rows:
        head.add_row(key, _fmt(value))
    out.print(head)
    metrics = Table(title="metrics")
    metrics.add_column("split")
    keys = ("ndcg@10", "hr@10", "mrr@10", "ndcg@20", "hr@20", "coverage@10")
    for k in keys:
        metrics.add_column(k, justify="right")
    for split in ("test", "valid"):
        vals = doc["metrics"][split]
        if vals:
            metrics.add_row(split, *(_fmt(vals.get(k)) for k in keys))
    out.print(metrics)
    if v.gate:
        print_verdict(v.gate, title=f"gate when registered: {_verdict_word(v.gate)}")
    else:
        typer.echo("gate: not run before registration")


@models_app.command("register")
def register(
    run_dir: Annotated[
        Path, typer.Argument(help="Run directory written by `augrec train`.", show_default=False)
    ],
    require_gate: Annotated[
        bool,
        typer.Option(
            "--require-gate",
            help="Refuse unless RUN_DIR/gate.json is a passing verdict for this model file.",
        ),
    ] = False,
    home: Home = None,
) -> None:
    """Register a run directory as a new immutable version; prints its tag.

    The version is named augrec-<dataset>-<model> with a version BentoML generates, and
    holds the run's manifest, metrics, model, config (and gate.json / features.json when
    present). Registering the same run again returns the version it already has.
    """
    reg = _registry(home)
    v, created = reg.register(run_dir, require_gate=require_gate)
    if created:
        typer.echo(f"registered {v.tag}")
        return
    typer.echo(f"already registered as {v.tag}")
    if v.labels.get("gate") != "passed":
        typer.echo(
            f"note: {v.tag} was registered before a passing gate (gate: {v.labels.get('gate')}); "
            "versions never change, so it keeps that record",
            err=True,
        )


@models_app.command("promote")
def promote(ref: Ref, alias: Alias = "production", note: Note = "", home: Home = None) -> None:
    """Point an alias (default production) at a version, atomically.

    The version it pointed at before is kept for [cyan]rollback[/]. A crash at any moment
    leaves the alias on its old version; concurrent promotes are serialised by a file lock.
    """
    reg = _registry(home)
    v, event = reg.promote(ref, alias, note)
    if event is None:
        typer.echo(f"{alias} already points at {v.tag}")
        return
    typer.echo(f"{alias}: {event['from'] or '(unset)'} -> {v.tag}")
    if v.labels.get("gate") != "passed":
        typer.echo(
            f"note: {v.tag} was registered without a passing gate ({v.labels.get('gate')})",
            err=True,
        )


@models_app.command("rollback")
def rollback(alias: Alias = "production", note: Note = "", home: Home = None) -> None:
    """Point an alias back at the version it pointed at before its last promote.

    Repeatable: each rollback steps one promote further back. The history keeps every move.
    """
    reg = _registry(home)
    v, event = reg.rollback(alias, note)
    typer.echo(f"{alias}: {event['from']} -> {v.tag} (rolled back)")


@models_app.command("aliases")
def aliases(home: Home = None, as_json: AsJson = False) -> None:
    """Show every alias, where it points, and its history (newest first)."""
    from rich.table import Table

    reg = _registry(home)
    doc = reg.aliases.read()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    table = Table(title=f"aliases ({reg.aliases.path})")
    for col in ("alias", "at (UTC)", "action", "from", "to", "user", "note"):
        table.add_column(col)
    for name, state in sorted(doc["aliases"].items()):
        for i, e in enumerate(reversed(state["history"])):
            table.add_row(
                f"{name} -> {state['tag']}" if i == 0 else "",
                e["at"],
                e["action"],
                e["from"] or "-",
                e["to"],
                e.get("user", "-"),
                e.get("note", ""),
            )
    console().print(table)


@models_app.command("export")
def export(
    ref: Ref,
    dest: Annotated[
        str,
        typer.Argument(
            help="Folder (created if missing), file:// URI or object-store URI such as "
            "s3://bucket/models/ (needs s3fs).",
            show_default=False,
        ),
    ],
    home: Home = None,
) -> None:
    """Write a version to DEST as <name>-<version>.bentomodel, for another registry to import.

    Aliases are not exported: promote the version in the registry that serves it.
    """
    reg = _registry(home)
    typer.echo(f"exported {reg.get(ref).tag} to {reg.export(ref, dest)}")


@models_app.command("import")
def import_(
    uri: Annotated[
        str,
        typer.Argument(
            help="A .bentomodel file: a path, file:// URI or object-store URI (s3://...).",
            show_default=False,
        ),
    ],
    home: Home = None,
) -> None:
    """Add an exported version to this registry under its own tag (checked file by file).

    Importing a version that is already here is a no-op; a different model under an
    existing tag is refused.
    """
    reg = _registry(home)
    v, created = reg.import_(uri)
    typer.echo(f"imported {v.tag}" if created else f"{v.tag} is already here")


# ---- gate -----------------------------------------------------------------------------------


def _verdict_word(verdict: dict[str, Any]) -> str:
    return "PASSED" if verdict["passed"] else "FAILED: " + ", ".join(verdict["failed"])


def print_verdict(verdict: dict[str, Any], title: str | None = None) -> None:
    """Every check with its status and numbers, as a table."""
    from rich.table import Table

    styles = {"pass": "green", "fail": "bold red", "skip": "yellow"}
    table = Table(
        title=title or f"gate {verdict['candidate']['run_dir']}: {_verdict_word(verdict)}"
    )
    table.add_column("check")
    table.add_column("result")
    table.add_column("numbers")
    for c in verdict["checks"]:
        table.add_row(c["name"], f"[{styles[c['status']]}]{c['status']}[/]", c["summary"])
    console().print(table)


def gate(
    candidate: Annotated[
        Path,
        typer.Option(
            "--candidate", help="Run directory written by `augrec train`.", show_default=False
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML with any of floor:, regression:, privacy:, serving: (see docs/registry.md).",
        ),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against", help="Alias to compare with (default: regression.against, production)."
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="The training data, if it moved from the path in the manifest."
        ),
    ] = None,
    write: Annotated[bool, typer.Option(help="Write RUN_DIR/gate.json (atomically).")] = True,
    home: Home = None,
) -> None:
    """Validate a candidate run before it is registered: exit 0 if it passes, 1 if not.

    Checks: the data is what the model was trained on; the model file reproduces its test
    NDCG@10; NDCG@10 beats popularity on the same split; no significant regression against
    the production version (paired per-user test; skipped when production saw other data);
    the synthetic-data privacy limits when augmentation was used; a serving smoke test (load,
    answer batches of users, latency). Prints every check and writes gate.json.
    """
    from augrec.config import load_yaml_config
    from augrec.registry.gate import GateConfig, run_gate, write_gate

    cfg = load_yaml_config(config, GateConfig) if config else GateConfig()
    if against is not None:
        from augrec.registry.aliases import check_alias

        cfg.regression.against = check_alias(against)
    champion = _registry(home).champion(cfg.regression.against)
    verdict = run_gate(candidate, cfg, champion=champion, data=data)
    print_verdict(verdict)
    if write:
        typer.echo(f"wrote {write_gate(verdict, candidate)}")
    if not verdict["passed"]:
        raise typer.Exit(code=1)
