"""Peer benchmark (issue 3, item 5): RecBole's SASRec against ours under one wall-clock budget.

Same data file, same leave-one-out full-ranking protocol (last item = test, second to last =
validation, seen items masked, NDCG@10 over every item), same model size and the same loss
(full softmax cross-entropy), one after the other in one run, each for `--budget-minutes` of
training + per-epoch validation (data preprocessing is timed separately).

RecBole runs in its own virtual environment (it needs numpy<2), created under --work on first
use, through `benchmarks/_recbole_driver.py`. Each system's finished result is saved under
--results (benchmarks/results/peer_recbole/, committed) and skipped on a rerun (--force redoes
it); one JSON object is printed on stdout.

    python benchmarks/peer_recbole.py                       # Beauty, 20 minutes each
    python benchmarks/peer_recbole.py --budget-minutes 1 --max-users 2000 --work /tmp/peer \
        --results /tmp/peer/results
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from augrec.config import TrainConfig
from augrec.data.loaders import load_dataset
from augrec.data.splits import Split, leave_one_out
from augrec.models.sasrec import SASRecConfig
from augrec.training.run import train_and_evaluate

log = logging.getLogger("peer_recbole")
REPO = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().with_name("_recbole_driver.py")
# torch 2.13.0 is the cached CPU wheel, as for augrec. RecBole 1.2.1 needs numpy<2 (its config
# aliases np.float_) and predates pandas 3 (under copy-on-write its in-place fillna on a column
# silently does nothing). setuptools<70 cannot be pinned: torch 2.13.0 requires >=77.0.3.
RECBOLE_REQUIREMENTS = ["recbole==1.2.1", "numpy<2", "pandas<3", "torch==2.13.0"]
SYSTEMS = ("augrec", "recbole")


def default_data() -> Path:
    """Beauty under $AUGREC_DATA_DIR, else under ../shared/datasets beside the repo."""
    root = Path(os.environ.get("AUGREC_DATA_DIR", REPO.parent / "shared" / "datasets"))
    return root / "amazon-beauty" / "Beauty.txt"


def model_size() -> dict[str, Any]:
    """The architecture both systems get: our SASRec defaults."""
    base = SASRecConfig()
    return {
        "max_len": base.max_len,
        "hidden": base.hidden,
        "layers": base.layers,
        "heads": base.heads,
        "dropout": base.dropout,
        "inner": 4 * base.hidden,  # our Block's MLP width
        "lr": base.lr,
    }


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a saved result must match to be reused."""
    return {
        "data": str(args.data),
        "max_users": args.max_users,
        "budget_s": args.budget_minutes * 60,
        "max_epochs": args.max_epochs,
        "seed": args.seed,
        "device": args.device,
        "model": model_size(),
        "loss": "full softmax cross-entropy",
        "protocol": "leave-one-out, full ranking, seen items masked, validation every epoch",
        "augrec_batch_users": SASRecConfig().batch_size,
        "recbole_batch_samples": args.recbole_batch_size,
    }


# ---------------------------------------------------------------- data


def prepare_data(args: argparse.Namespace) -> tuple[Path, pd.DataFrame]:
    """The file both systems read: --data itself, or its first --max-users users."""
    ds = load_dataset(args.data)
    df = ds.interactions[["user_id", "item_id", "timestamp"]]
    if args.max_users is None:
        return args.data, df
    keep = df["user_id"].drop_duplicates().iloc[: args.max_users]
    df = df[df["user_id"].isin(keep)].reset_index(drop=True)
    out = args.work / "data" / "interactions.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False)
    return out, df


def write_inter(df: pd.DataFrame, root: Path, name: str) -> Path:
    """RecBole atomic file; the timestamp is the row's position, so order = our order exactly.

    `df` is sorted by user, then time, keeping the file order for equal times (augrec's
    loader); a unique running position leaves RecBole's sorts nothing to decide.
    """
    path = root / name / f"{name}.inter"
    path.parent.mkdir(parents=True, exist_ok=True)
    out = pd.DataFrame(
        {
            "user_id:token": df["user_id"].astype(str),
            "item_id:token": df["item_id"].astype(str),
            "timestamp:float": range(len(df)),
        }
    )
    out.to_csv(path, sep="\t", index=False)
    return path


# ---------------------------------------------------------------- systems


class EpochLog:
    """One log line per epoch for our loop, in the driver's format."""

    def __init__(self, budget_s: float):
        self.budget_s = budget_s

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
        """Log the epoch (the checkpoint is not needed here)."""
        log.info(
            "augrec epoch %d loss %.4f valid ndcg@10 %.4f (best %.4f @ %d) train %.1fs "
            "valid %.1fs wall %.0f/%.0fs",
            metrics["epoch"],
            metrics["loss"],
            metrics.get("valid_ndcg@10", float("nan")),
            metrics["best_valid_ndcg@10"],
            metrics["best_epoch"],
            metrics["epoch_seconds"],
            metrics.get("valid_seconds", 0.0),
            metrics["wall_seconds"],
            self.budget_s,
        )


def run_augrec(data: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Our SASRec through the normal training entry point."""
    size = cfg["model"]
    params = {
        "max_len": size["max_len"],
        "hidden": size["hidden"],
        "layers": size["layers"],
        "heads": size["heads"],
        "dropout": size["dropout"],
        "lr": size["lr"],
        "loss": "ce",
        # RecBole's SASRec uses item ids only; our default adds attribute embeddings.
        "use_attributes": False,
        "time_budget_s": cfg["budget_s"],
        "eval_every": 1,
        "epochs": cfg["max_epochs"],
        "patience": cfg["max_epochs"],  # no early stop: both systems use the whole budget
        "device": cfg["device"],
    }
    result = train_and_evaluate(
        data,
        "sasrec",
        TrainConfig(model=params),
        seed=cfg["seed"],
        reporter=EpochLog(cfg["budget_s"]),
    )
    metrics = result.metrics()
    model = result.model
    return {
        "history": [
            {k: v for k, v in h.items() if isinstance(v, int | float)} for h in model.fit_history
        ],
        "best_epoch": model.fit_info["best_epoch"],
        "test": {"ndcg@10": metrics["test"]["ndcg@10"], "hr@10": metrics["test"]["hr@10"]},
        "preprocess_seconds": result.seconds["load"],
        "test_seconds": result.seconds["eval"],
        "params": int(sum(p.numel() for p in model.net.parameters())),
        "augrec_params": params,
    }


def ensure_venv(venv: Path) -> float:
    """Create RecBole's venv once; returns the seconds the (first) setup took.

    Only a folder this function made (it holds the marker file) is ever rebuilt: another
    existing folder at `venv` is refused rather than cleared.
    """
    marker = venv / "augrec-requirements.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved["requirements"] == RECBOLE_REQUIREMENTS and saved.get("seconds") is not None:
            return float(saved["seconds"])
    elif venv.exists() and any(venv.iterdir()):
        sys.exit(f"--venv {venv} exists and was not made by this script; pick another path")
    log.info("creating RecBole venv %s: pip install %s", venv, " ".join(RECBOLE_REQUIREMENTS))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    marker.write_text(json.dumps({"requirements": RECBOLE_REQUIREMENTS, "seconds": None}))
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *RECBOLE_REQUIREMENTS],
        check=True,
        stdout=sys.stderr,
    )
    seconds = time.perf_counter() - t0
    marker.write_text(json.dumps({"requirements": RECBOLE_REQUIREMENTS, "seconds": seconds}))
    log.info("RecBole venv ready in %.0fs", seconds)
    return seconds


def recbole_config(cfg: dict[str, Any], data_root: Path, batch: int) -> dict[str, Any]:
    """RecBole settings aligned with ours (keys are RecBole's own)."""
    size = cfg["model"]
    return {
        "data_path": str(data_root),
        "checkpoint_dir": str(data_root.parent / "recbole-saved"),
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        # No re-filtering: the file is used as it is (Beauty is already 5-core).
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "rm_dup_inter": None,
        "val_interval": None,
        "MAX_ITEM_LIST_LENGTH": size["max_len"],
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "group_by": "user",
            "mode": "full",
        },
        "repeatable": True,  # RecBole requires it for sequential models; the driver masks
        "metrics": ["NDCG", "Hit"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "hidden_size": size["hidden"],
        "inner_size": size["inner"],
        "n_layers": size["layers"],
        "n_heads": size["heads"],
        "hidden_dropout_prob": size["dropout"],
        "attn_dropout_prob": size["dropout"],
        "hidden_act": "gelu",
        "learning_rate": size["lr"],
        "weight_decay": 0.0,
        "train_batch_size": batch,
        "eval_batch_size": 4096,
        "epochs": cfg["max_epochs"],
        "eval_step": 1,
        "stopping_step": cfg["max_epochs"],
        "seed": cfg["seed"],
        "reproducibility": True,
        "gpu_id": "" if cfg["device"] == "cpu" else "0",
        "worker": 0,
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
    }


def run_recbole(
    df: pd.DataFrame, cfg: dict[str, Any], work: Path, venv: Path, batch: int
) -> dict[str, Any]:
    """RecBole's SASRec in its own venv through the driver script."""
    setup_s = ensure_venv(venv)
    name = "peer"
    data_root = work / "recbole-data"
    inter = write_inter(df, data_root, name)
    spec = {
        "dataset": name,
        "inter_file": str(inter),
        "budget_s": cfg["budget_s"],
        "max_epochs": cfg["max_epochs"],
        "config": recbole_config(cfg, data_root, batch),
    }
    spec_path = work / "recbole-spec.json"
    out_path = work / "recbole-driver-out.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    out_path.unlink(missing_ok=True)
    cwd = work / "recbole-cwd"  # RecBole writes log_tensorboard/ into its working directory
    cwd.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            str(DRIVER),
            "--spec",
            str(spec_path),
            "--out",
            str(out_path),
        ],
        check=True,
        cwd=cwd,
        env=env,
        stdout=sys.stderr,
    )
    out = json.loads(out_path.read_text())
    out["venv_setup_seconds"] = setup_s
    out["recbole_config"] = spec["config"]
    return out


# ---------------------------------------------------------------- report


def summarize(res: dict[str, Any], target: float) -> dict[str, Any]:
    """The per-system numbers of the report."""
    hist = res["history"]
    n = len(hist)
    evaluated = [h for h in hist if "valid_ndcg@10" in h]
    reached = next((h for h in evaluated if h["valid_ndcg@10"] >= target), None)
    best = max(evaluated, key=lambda h: h["valid_ndcg@10"])
    out = {
        "seconds_per_epoch": hist[-1]["wall_seconds"] / n,
        "train_seconds_per_epoch": sum(h["epoch_seconds"] for h in hist) / n,
        "valid_seconds_per_epoch": sum(h.get("valid_seconds", 0.0) for h in evaluated)
        / max(len(evaluated), 1),
        f"seconds_to_valid_ndcg10_{target:g}": reached["wall_seconds"] if reached else None,
        "best_valid_ndcg10": best["valid_ndcg@10"],
        "best_epoch": best["epoch"],
        "test_ndcg10": res["test"]["ndcg@10"],
        "test_hr10": res["test"]["hr@10"],
        "epochs": n,
        "wall_seconds": hist[-1]["wall_seconds"],
        "preprocess_seconds": res["preprocess_seconds"],
        "params": res["params"],
        "curve": [
            [h["epoch"], round(h["wall_seconds"], 1), round(h["valid_ndcg@10"], 5)]
            for h in evaluated
        ],
    }
    if "native_test" in res:
        out["test_ndcg10_unmasked"] = res["test"]["unmasked_ndcg@10"]
        out["test_ndcg10_recbole_evaluator"] = res["native_test"].get("ndcg@10")
        out["train_samples"] = res["train_samples"]
        out["venv_setup_seconds"] = round(res["venv_setup_seconds"], 1)
        out["versions"] = {k: res[k] for k in ("recbole", "torch", "numpy")}
    return out


def protocol_check(split: Split, rb: dict[str, Any]) -> dict[str, Any]:
    """Do RecBole's validation and test (user, target) pairs equal ours?"""

    def ours(eval_set) -> set[tuple[str, str]]:
        users = split.user_ids[eval_set.users].astype(str)
        items = split.item_ids[eval_set.targets].astype(str)
        return set(zip(users.tolist(), items.tolist(), strict=True))

    def theirs(key: str) -> set[tuple[str, str]]:
        return {(u, i) for u, i in rb[key]}

    return {
        "valid_targets_identical": ours(split.valid) == theirs("valid_pairs"),
        "test_targets_identical": ours(split.test) == theirs("test_pairs"),
        "items": {"augrec": split.n_items, "recbole": rb["items"]},
        "eval_users": {"augrec": len(split.test), "recbole": len(rb["test_pairs"])},
    }


def load_or_run(path: Path, cfg: dict[str, Any], force: bool, run) -> dict[str, Any]:
    """Resume: reuse a finished result made with the same settings, else run and save it."""
    if path.exists() and not force:
        saved = json.loads(path.read_text())
        if saved["settings"] != cfg:
            sys.exit(
                f"{path} was made with other settings; use --force to redo it or another --work"
            )
        log.info("skip %s (done)", path)
        return saved
    result = run()
    result["settings"] = cfg
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=default_data(), help="default: %(default)s")
    ap.add_argument("--budget-minutes", type=float, default=20.0, help="per system")
    ap.add_argument("--work", type=Path, default=Path("runs/peer_recbole"))
    ap.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).parent / "results" / "peer_recbole",
        help="finished systems' results (committed, so a run can span sessions); "
        "default: %(default)s",
    )
    ap.add_argument("--venv", type=Path, help="RecBole's venv (default: <work>/recbole-venv)")
    ap.add_argument("--force", action="store_true", help="redo finished systems")
    ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.03, help="validation NDCG@10 to time")
    ap.add_argument("--max-epochs", type=int, default=100_000, help="cap besides the budget")
    ap.add_argument("--max-users", type=int, help="use only the first N users (smoke runs)")
    ap.add_argument("--recbole-batch-size", type=int, default=2048, help="RecBole's default")
    ap.add_argument("--device", default="cpu", help="cpu or cuda, for both systems")
    args = ap.parse_args()
    # Absolute paths: RecBole's driver runs in its own working directory.
    args.work, args.results = args.work.resolve(), args.results.resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    args.work.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    venv = (args.venv or args.work / "recbole-venv").resolve()
    cfg = settings(args)

    data, df = prepare_data(args)
    results = {}
    if "augrec" in args.systems:
        results["augrec"] = load_or_run(
            args.results / "augrec.json", cfg, args.force, lambda: run_augrec(data, cfg)
        )
    if "recbole" in args.systems:
        results["recbole"] = load_or_run(
            args.results / "recbole.json",
            cfg,
            args.force,
            lambda: run_recbole(df, cfg, args.work, venv, args.recbole_batch_size),
        )

    report: dict[str, Any] = {name: summarize(r, args.target) for name, r in results.items()}
    key = f"seconds_to_valid_ndcg10_{args.target:g}"
    ours, theirs = (report.get(s, {}).get(key) for s in SYSTEMS)
    report[f"ratio_time_to_{args.target:g}"] = ours / theirs if ours and theirs else None
    if len(results) == 2:
        # When RecBole never reaches the target: how long ours took to match RecBole's best.
        bar = report["recbole"]["best_valid_ndcg10"]
        report["augrec_seconds_to_recbole_best_valid"] = next(
            (wall for _, wall, v in report["augrec"]["curve"] if v >= round(bar, 5)), None
        )
    if "recbole" in results:
        split = leave_one_out(load_dataset(data))
        report["protocol_check"] = protocol_check(split, results["recbole"])
        report["recbole_config"] = results["recbole"]["recbole_config"]
    if "augrec" in results:
        report["augrec_params"] = results["augrec"]["augrec_params"]
    report["settings"] = cfg
    (args.results / "report.json").write_text(json.dumps(report, indent=2))
    # The validation curves stay in report.json; stdout gets the summary.
    for name in SYSTEMS:
        report.get(name, {}).pop("curve", None)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
