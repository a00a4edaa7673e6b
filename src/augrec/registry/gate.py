"""The validation gate: what a candidate run must pass before it is registered and promoted.

Checks (each passes, fails or is skipped with a reason; the gate passes when none fails):

1. `data` — the training data is where the manifest says (or at `--data`) and hashes to the
   manifest's fingerprint, and the model's catalog matches it. Every check below that ranks
   users needs this.
2. `reproduces` — the model file, ranked again on the test users, gives the NDCG@10 that
   metrics.json reports (a model file that does not match its metrics is not the model
   that was evaluated).
3. `floor` — NDCG@10 beats popularity on the same split x `floor.popularity_factor`
   (popularity is fitted here, in-process), and an optional absolute `floor.min_ndcg10`.
4. `no_regression` — against the version the alias (`production`) points at, when that
   version was trained on the same data (same fingerprint and split settings): both models
   rank the same test users and a one-sided paired t-test on the per-user NDCG@10
   differences fails the candidate when it is worse by more than `regression.max_drop` at
   level `regression.alpha`. Skipped, with a note, when there is no production version or it
   was trained on other data.
5. `privacy` — when the training data was augmented, the synthetic-data report's own
   privacy gates (exact copies, closest-record distance, membership inference, each against
   its holdout baseline) plus any limits of ours on its numbers; skipped when no
   augmentation was used.
6. `serving` — load the model from the run directory into a `Recommender` and answer
   batches of test users' histories: valid ids, finite scores, nothing the user already has,
   load time and p99 latency within budget.

Per-user results for the paired test are recomputed here by loading both models and ranking
the test users, rather than stored with every run: it costs one ranking pass per model, and it
is the same pass that proves the model file reproduces its metrics.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from augrec import rundir
from augrec.errors import AugrecError, RegistryError
from augrec.registry.manifest import SYNTHETIC_REPORT, file_sha256, fingerprint_files, now_iso

if TYPE_CHECKING:
    from augrec.data.splits import Split
    from augrec.models.base import Recommender
    from augrec.registry.store import ModelVersion

FORMAT = "augrec.gate/1"
K = 10  # the gate's metric is NDCG@10, the headline metric everywhere else
REPRODUCE_TOLERANCE = 1e-6


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FloorConfig(_Section):
    """Absolute floors."""

    popularity_factor: float = Field(
        1.0, ge=0, description="NDCG@10 must exceed popularity's NDCG@10 times this"
    )
    min_ndcg10: float | None = Field(None, ge=0, le=1, description="optional absolute floor")


class RegressionConfig(_Section):
    """Champion/challenger: no significant regression against the aliased version."""

    against: str = Field("production", description="alias of the version to compare with")
    alpha: float = Field(0.05, gt=0, lt=1, description="one-sided test level")
    max_drop: float = Field(
        0.0, ge=0, description="mean NDCG@10 drop tolerated (e.g. the seed-to-seed spread)"
    )


class PrivacyConfig(_Section):
    """The synthetic-data report's own gates, plus optional limits of ours on its numbers."""

    allow_not_run: bool = Field(
        False, description="pass a report gate that could not run (e.g. no likelihood scores)"
    )
    max: dict[str, float] = Field(
        default_factory=dict,
        description="privacy number (dotted path, e.g. mia.attack_auc) -> highest allowed",
    )
    min: dict[str, float] = Field(
        default_factory=dict, description="privacy number -> lowest allowed"
    )


class ServingSmokeConfig(_Section):
    """Serving smoke test."""

    requests: int = Field(20, ge=1, description="timed requests (after one warm-up)")
    users_per_request: int = Field(32, ge=1)
    k: int = Field(10, ge=1)
    p99_ms: float = Field(200.0, gt=0, description="latency budget per request, p99")
    load_s: float = Field(30.0, gt=0, description="budget for loading the model")
    threads: int | None = Field(
        1,
        ge=1,
        description="torch threads while answering (None: leave as is); a serving worker "
        "answers with one, and more on a busy machine measures contention, not the model",
    )


class GateConfig(_Section):
    """Every threshold of the gate; a YAML file may set any subset (`augrec gate --config`)."""

    floor: FloorConfig = FloorConfig()
    regression: RegressionConfig = RegressionConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    serving: ServingSmokeConfig = ServingSmokeConfig()
    batch_size: int = Field(512, ge=1, description="users per ranking batch")


Status = Literal["pass", "fail", "skip"]


@dataclass
class Check:
    """One check's outcome: status, a one-line summary, and the numbers behind it."""

    name: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Context:
    """What the checks share: the candidate's files, its data and its test ranking."""

    run_dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    cfg: GateConfig
    split: Split | None = None
    model: Recommender | None = None
    ranks: np.ndarray | None = None


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RegistryError(
            f"--candidate: {path.parent} has no {path.name}"
            + (" (train it again with `augrec train`)" if path.name == rundir.MANIFEST else "")
        )
    return json.loads(path.read_text())


# ---- checks -------------------------------------------------------------------------------


def check_data(ctx: _Context, data: str | Path | None) -> Check:
    """Load the training data, prove it is the data the candidate saw, rebuild the split."""
    from augrec import storage
    from augrec.config import SplitConfig
    from augrec.data.loaders import load_dataset
    from augrec.data.splits import make_split

    recorded = ctx.manifest["data"]
    path = data if data is not None else recorded["path"]
    path = str(path) if storage.is_remote(path) else Path(path)  # a URI is fetched by the loader
    details = {"path": str(path), "fingerprint": recorded["fingerprint"]}
    if isinstance(path, Path) and not path.exists():
        return Check(
            "data",
            "fail",
            f"training data not found at {path}; pass --data with a copy of it",
            details,
        )
    try:
        ds = load_dataset(path, recorded.get("format"))
    except AugrecError as exc:
        return Check("data", "fail", f"cannot load the training data: {exc}", details)
    found = fingerprint_files(ds.files)["fingerprint"]
    if found != recorded["fingerprint"]:
        details["found"] = found
        return Check(
            "data",
            "fail",
            f"the data at {path} is not what the candidate was trained on "
            f"(fingerprint {found[7:19]} != {recorded['fingerprint'][7:19]})",
            details,
        )
    split_cfg = SplitConfig(**ctx.manifest["config"]["split"])
    split = make_split(ds, split_cfg.kind, split_cfg.test_cutoff, split_cfg.valid_cutoff)
    try:
        model, item_ids = rundir.load_model(ctx.run_dir)
    except Exception as exc:  # a corrupt or foreign model file: the gate reports, not crashes
        return Check("data", "fail", f"cannot load model.pt: {exc}", details)
    if not np.array_equal(item_ids, split.item_ids):
        return Check("data", "fail", "the model's item catalog does not match the data", details)
    ctx.split, ctx.model = split, model
    details["test_users"] = len(split.test)
    return Check("data", "pass", f"fingerprint matches; {len(split.test)} test users", details)


def check_reproduces(ctx: _Context) -> Check:
    """Rank the test users again; NDCG@10 must equal metrics.json."""
    from augrec.evaluation.evaluate import rank_users
    from augrec.evaluation.metrics import ndcg

    assert ctx.split is not None and ctx.model is not None
    ctx.ranks = rank_users(ctx.model, ctx.split.test, ctx.cfg.batch_size).ranks
    got = ndcg(ctx.ranks, K)
    reported = float(ctx.metrics["test"][f"ndcg@{K}"])
    details = {"ndcg@10": got, "reported": reported}
    if abs(got - reported) > REPRODUCE_TOLERANCE:
        return Check(
            "reproduces",
            "fail",
            f"model.pt ranks test users to NDCG@10 {got:.4f}, metrics.json says {reported:.4f}",
            details,
        )
    return Check("reproduces", "pass", f"NDCG@10 {got:.4f} as reported", details)


def check_floor(ctx: _Context) -> Check:
    """Beat popularity on the same split (times a factor), and an optional absolute floor."""
    from augrec.evaluation.evaluate import rank_users
    from augrec.evaluation.metrics import ndcg
    from augrec.models import build_model

    assert ctx.split is not None and ctx.ranks is not None
    pop = build_model("popularity")
    pop.fit(ctx.split)
    pop_ndcg = ndcg(rank_users(pop, ctx.split.test, ctx.cfg.batch_size).ranks, K)
    cand = ndcg(ctx.ranks, K)
    f = ctx.cfg.floor
    need = pop_ndcg * f.popularity_factor
    details = {
        "ndcg@10": cand,
        "popularity_ndcg@10": pop_ndcg,
        "popularity_factor": f.popularity_factor,
        "min_ndcg10": f.min_ndcg10,
    }
    problems = []
    if not cand > need:
        problems.append(
            f"NDCG@10 {cand:.4f} does not beat popularity {pop_ndcg:.4f} "
            f"x factor {f.popularity_factor:g} = {need:.4f}"
        )
    if f.min_ndcg10 is not None and cand < f.min_ndcg10:
        problems.append(f"NDCG@10 {cand:.4f} is below the floor {f.min_ndcg10:.4f}")
    summary = f"NDCG@10 {cand:.4f} > popularity {pop_ndcg:.4f}"
    if f.popularity_factor != 1:
        summary += f" x factor {f.popularity_factor:g} = {need:.4f}"
    if problems:
        return Check("floor", "fail", "; ".join(problems), details)
    return Check("floor", "pass", summary, details)


def paired_regression_test(diff: np.ndarray, max_drop: float) -> dict[str, float]:
    """One-sided paired t-test of H0: mean(diff) >= -max_drop against "the candidate is worse".

    `diff` is candidate minus production, per user. Returns the mean, its 95% interval, the
    t statistic and the p-value (small p: a real regression beyond `max_drop`).
    """
    from scipy import stats

    n = len(diff)
    mean = float(diff.mean()) if n else 0.0
    sd = float(diff.std(ddof=1)) if n > 1 else 0.0
    if n < 2 or sd == 0.0:
        # No spread: the difference is exact, not an estimate.
        p = 0.0 if mean + max_drop < 0 else 1.0
        return {"users": n, "mean_diff": mean, "ci95": [mean, mean], "t": math.nan, "p": p}
    se = sd / math.sqrt(n)
    t = (mean + max_drop) / se
    half = float(stats.t.ppf(0.975, n - 1)) * se
    return {
        "users": n,
        "mean_diff": mean,
        "ci95": [mean - half, mean + half],
        "t": t,
        "p": float(stats.t.cdf(t, n - 1)),
    }


@dataclass(frozen=True)
class Champion:
    """What the caller found behind the regression alias: a version, or why there is none.

    The gate never opens a registry itself; the caller (CLI, pipeline step) resolves the
    alias and hands over the version, so the gate and the store do not import each other.
    """

    tag: str | None = None
    version: ModelVersion | None = None
    error: str | None = None  # the alias points at a version that cannot be read


def check_regression(ctx: _Context, champion: Champion | None) -> Check:
    """Paired per-user NDCG@10 against the aliased version, when trained on the same data."""
    from augrec.evaluation.evaluate import rank_users
    from augrec.evaluation.metrics import per_user_ndcg

    r = ctx.cfg.regression
    name = "no_regression"
    if champion is None:
        return Check(name, "skip", "no registry given")
    tag = champion.tag
    if tag is None:
        return Check(name, "skip", f"no {r.against!r} version yet: nothing to compare with")
    details: dict[str, Any] = {"against": r.against, "tag": tag}
    if champion.version is None:
        return Check(
            name, "fail", f"{r.against!r} points at {tag}, which fails: {champion.error}", details
        )
    m = champion.version.manifest
    if m.get("run_id") == ctx.manifest["run_id"]:
        return Check(name, "skip", f"the candidate is {tag} itself", details)
    if m.get("data", {}).get("fingerprint") != ctx.manifest["data"]["fingerprint"]:
        return Check(
            name,
            "skip",
            f"{tag} was trained on other data (fingerprint "
            f"{str(m.get('data', {}).get('fingerprint'))[7:19]} != "
            f"{ctx.manifest['data']['fingerprint'][7:19]}): not comparable",
            details,
        )
    if m.get("split") != ctx.manifest["split"]:
        return Check(
            name,
            "skip",
            f"{tag} used another split ({m.get('split')}): not comparable",
            details,
        )
    assert ctx.split is not None and ctx.ranks is not None
    try:
        prod_model, prod_items = champion.version.load()
    except RegistryError as exc:
        return Check(name, "fail", str(exc), details)
    if not np.array_equal(prod_items, ctx.split.item_ids):
        return Check(name, "skip", f"{tag} has another item catalog: not comparable", details)
    prod_ranks = rank_users(prod_model, ctx.split.test, ctx.cfg.batch_size).ranks
    cand = per_user_ndcg(ctx.ranks, K)
    prod = per_user_ndcg(prod_ranks, K)
    test = paired_regression_test(cand - prod, r.max_drop)
    details.update(
        {
            "ndcg@10": float(cand.mean()),
            "production_ndcg@10": float(prod.mean()),
            **test,
            "alpha": r.alpha,
            "max_drop": r.max_drop,
        }
    )
    lo, hi = test["ci95"]
    summary = (
        f"NDCG@10 {cand.mean():.4f} vs {prod.mean():.4f} ({tag}): diff {test['mean_diff']:+.4f} "
        f"[{lo:+.4f}, {hi:+.4f}], p={test['p']:.3g} over {test['users']} users"
    )
    if test["p"] < r.alpha:
        return Check(name, "fail", "significantly worse: " + summary, details)
    return Check(name, "pass", summary, details)


def _numbers(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a nested report section into dotted keys -> leaf values."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_numbers(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def check_privacy(ctx: _Context) -> Check:
    """The synthetic-data privacy gates, when the training data was augmented.

    Reads the report summary the manifest carries (`augmentation.report`), else
    `<augmentation.path>/synthetic_report.json`. Fails on any report gate that failed (or
    could not run, unless `privacy.allow_not_run`), and on any `privacy.max`/`privacy.min`
    limit broken or whose number the report lacks: never passes on numbers it could not read.
    """
    aug = ctx.manifest.get("augmentation")
    if not aug:
        return Check("privacy", "skip", "no augmentation used")
    report, source = aug.get("report"), "manifest"
    if report is None and aug.get("path"):
        path = Path(aug["path"]) / SYNTHETIC_REPORT
        if path.exists():
            report, source = json.loads(path.read_text()), str(path)
    details: dict[str, Any] = {"method": aug.get("method"), "source": source}
    if report is None:
        return Check(
            "privacy",
            "fail",
            f"augmentation {aug.get('method')!r} was used but its synthetic-data report was "
            f"not found (manifest augmentation.report or <augmentation.path>/{SYNTHETIC_REPORT})",
            details,
        )
    limits = ctx.cfg.privacy
    gates = report.get("gates") or {}
    details["gates"] = gates
    problems = []
    for name, g in gates.items():
        if g.get("passed") is False:
            problems.append(f"{name} {_num(g.get('value'))} > {_num(g.get('threshold'))}")
        elif g.get("passed") is None and not limits.allow_not_run:
            problems.append(f"{name} not run ({g.get('reason', 'no data')})")
    flat = _numbers(report.get("privacy") or {})
    for key, bound in limits.max.items():
        value = _lookup(flat, key)
        if value is None:
            problems.append(f"{key} missing from the report")
        elif value > bound:
            problems.append(f"{key} {value:.4g} > {bound:g}")
    for key, bound in limits.min.items():
        value = _lookup(flat, key)
        if value is None:
            problems.append(f"{key} missing from the report")
        elif value < bound:
            problems.append(f"{key} {value:.4g} < {bound:g}")
    if not gates and not limits.max and not limits.min:
        problems.append("the report has no privacy gates and no limits are configured")
    if problems:
        return Check("privacy", "fail", "; ".join(problems), details)
    checked = len(gates) + len(limits.max) + len(limits.min)
    return Check(
        "privacy", "pass", f"{checked} privacy checks passed ({aug.get('method')})", details
    )


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _lookup(flat: dict[str, Any], key: str) -> float | None:
    """A metric by dotted key, or by its last component when that is unambiguous."""
    if key in flat:
        value = flat[key]
    else:
        hits = [v for k, v in flat.items() if k.split(".")[-1] == key]
        if len(hits) != 1:
            return None
        value = hits[0]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _answer(
    model: Recommender, pool: list[np.ndarray], n_items: int, s: ServingSmokeConfig
) -> tuple[list[float], list[str]]:
    """Answer `s.requests` batches after one warm-up; returns latencies (ms) and problems."""
    latencies: list[float] = []
    problems: list[str] = []
    for r in range(s.requests + 1):  # request 0 warms up and is not timed
        batch = [
            pool[(r * s.users_per_request + i) % len(pool)] for i in range(s.users_per_request)
        ]
        t1 = time.perf_counter()
        items, scores = model.topk(batch, s.k, exclude_seen=True)
        elapsed = (time.perf_counter() - t1) * 1000
        if r:
            latencies.append(elapsed)
        if items.shape != (len(batch), min(s.k, n_items)):
            problems.append(f"answer shape {items.shape}, expected {(len(batch), s.k)}")
        valid = np.isfinite(scores)
        if ((items[valid] < 1) | (items[valid] > n_items)).any():
            problems.append("item ids outside the catalog")
        if any(np.isin(items[i][valid[i]], h).any() for i, h in enumerate(batch)):
            problems.append("recommended an item the user already has")
        if np.isnan(scores).any():
            problems.append("NaN scores")
        if problems:
            break
    return latencies, problems


def check_serving(ctx: _Context) -> Check:
    """Load from the run directory and answer batches of users within the latency budget."""
    import torch

    s = ctx.cfg.serving
    t0 = time.perf_counter()
    try:
        model, item_ids = rundir.load_model(ctx.run_dir)
    except Exception as exc:
        return Check("serving", "fail", f"cannot load the model: {exc}")
    load_s = time.perf_counter() - t0
    n_items = len(item_ids) - 1
    if ctx.split is not None and len(ctx.split.test):
        pool = ctx.split.test.histories
    else:  # no data to hand: plausible histories of random catalog items
        rng = np.random.default_rng(0)
        pool = [rng.integers(1, n_items + 1, size=int(rng.integers(1, 20))) for _ in range(256)]
    threads = torch.get_num_threads()
    if s.threads is not None:
        torch.set_num_threads(s.threads)
    try:
        latencies, problems = _answer(model, pool, n_items, s)
    finally:
        torch.set_num_threads(threads)
    lat = np.array(latencies) if latencies else np.array([math.inf])
    details = {
        "load_s": round(load_s, 4),
        "requests": len(latencies),
        "users_per_request": s.users_per_request,
        "threads": s.threads,
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "budget_p99_ms": s.p99_ms,
        "budget_load_s": s.load_s,
    }
    if load_s > s.load_s:
        problems.append(f"load took {load_s:.2f}s > {s.load_s:g}s")
    if details["p99_ms"] > s.p99_ms:
        problems.append(f"p99 {details['p99_ms']:.1f} ms > {s.p99_ms:g} ms")
    summary = (
        f"loaded in {load_s:.2f}s; {len(latencies)} requests x {s.users_per_request} users: "
        f"p50 {details['p50_ms']:.1f} ms, p99 {details['p99_ms']:.1f} ms"
    )
    if problems:
        return Check("serving", "fail", "; ".join(dict.fromkeys(problems)), details)
    return Check("serving", "pass", summary, details)


# ---- the gate -----------------------------------------------------------------------------


def run_gate(
    candidate: str | Path,
    cfg: GateConfig | None = None,
    champion: Champion | None = None,
    data: str | Path | None = None,
) -> dict[str, Any]:
    """Run every check on a candidate run directory; returns the `gate.json` document.

    Args:
        candidate: The run directory (`augrec train --out`).
        cfg: Thresholds (defaults: `GateConfig()`).
        champion: The version `cfg.regression.against` points at (see `Champion`; None
            skips the comparison).
        data: The training data, when it is no longer at the path the manifest records.
    """
    cfg = cfg or GateConfig()
    run_dir = Path(candidate)
    t0 = time.perf_counter()
    manifest = _read(run_dir / rundir.MANIFEST)
    ctx = _Context(run_dir, manifest, _read(run_dir / rundir.METRICS), cfg)
    checks = [check_data(ctx, data)]
    if ctx.split is not None:
        checks += [check_reproduces(ctx), check_floor(ctx), check_regression(ctx, champion)]
    else:
        why = "needs the training data (see the data check)"
        checks += [Check(n, "fail", why) for n in ("reproduces", "floor", "no_regression")]
    checks += [check_privacy(ctx), check_serving(ctx)]
    failed = [c.name for c in checks if c.status == "fail"]
    return {
        "format": FORMAT,
        "passed": not failed,
        "failed": failed,
        "candidate": {
            "run_dir": str(run_dir.resolve()),
            "run_id": manifest["run_id"],
            "model": manifest["model"]["name"],
            "dataset": manifest["dataset"],
            "data_fingerprint": manifest["data"]["fingerprint"],
            "model_sha256": file_sha256(run_dir / rundir.MODEL),
        },
        "checks": [asdict(c) for c in checks],
        "config": cfg.model_dump(),
        "created_at": now_iso(),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def write_gate(verdict: dict[str, Any], run_dir: str | Path) -> Path:
    """Write `gate.json` into the run directory (atomically)."""
    return rundir.write_gate(_json_safe(verdict), run_dir)


def _json_safe(obj: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
