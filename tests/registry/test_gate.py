"""The validation gate: a degraded candidate fails, a good one passes, every check explains."""

import json
import shutil

import pytest
from registry_helpers import train_run

from augrec.registry.gate import GateConfig, paired_regression_test, run_gate, write_gate


def by_name(verdict):
    return {c["name"]: c for c in verdict["checks"]}


def test_a_good_candidate_passes(runs, registry):
    verdict = run_gate(runs["itemknn"], champion=registry.champion())
    checks = by_name(verdict)
    assert verdict["passed"] and verdict["failed"] == []
    assert [c["name"] for c in verdict["checks"]] == [
        "data",
        "reproduces",
        "floor",
        "no_regression",
        "privacy",
        "serving",
    ]
    assert checks["floor"]["details"]["ndcg@10"] > checks["floor"]["details"]["popularity_ndcg@10"]
    assert " > popularity " in checks["floor"]["summary"]  # no bare "(x1)"
    assert "(x" not in checks["floor"]["summary"]
    assert checks["no_regression"]["status"] == "skip"  # no production version yet
    assert checks["privacy"] == {
        "name": "privacy",
        "status": "skip",
        "summary": "no augmentation used",
        "details": {},
    }
    assert checks["serving"]["details"]["requests"] == 20


def test_an_untrained_sasrec_is_rejected_and_gate_json_names_the_check(runs, registry, tmp_path):
    run = tmp_path / "candidate"
    shutil.copytree(runs["sasrec0"], run)
    verdict = run_gate(run, champion=registry.champion())
    assert not verdict["passed"] and "floor" in verdict["failed"]
    write_gate(verdict, run)
    written = json.loads((run / "gate.json").read_text())
    assert written["passed"] is False and written["failed"] == verdict["failed"]
    floor = by_name(written)["floor"]
    assert floor["status"] == "fail" and "does not beat popularity" in floor["summary"]
    assert " x factor 1 = " in floor["summary"]  # what the factor is, and the bar it makes
    assert written["candidate"]["model"] == "sasrec"
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_regression_against_production_is_paired_and_significant(runs, registry):
    good, _ = registry.register(runs["itemknn"])
    registry.promote(good.tag)
    # Floors off, so only the comparison with production can fail it.
    cfg = GateConfig(floor={"popularity_factor": 0.0})
    verdict = run_gate(runs["sasrec0"], cfg, champion=registry.champion())
    check = by_name(verdict)["no_regression"]
    assert verdict["failed"] == ["no_regression"]
    details = check["details"]
    assert details["tag"] == good.tag and details["users"] == 300
    assert details["mean_diff"] < 0 and details["p"] < 0.05
    assert details["ci95"][1] < 0


def test_a_retrain_of_production_is_not_a_regression(runs, registry, tiny_data, tmp_path):
    good, _ = registry.register(runs["itemknn"])
    registry.promote(good.tag)
    retrain = train_run(tiny_data, tmp_path / "again", "itemknn", {"neighbors": 50})
    verdict = run_gate(retrain, champion=registry.champion())
    check = by_name(verdict)["no_regression"]
    assert verdict["passed"] and check["status"] == "pass"
    assert check["details"]["mean_diff"] == 0.0 and check["details"]["p"] == 1.0


def test_production_on_other_data_is_skipped_with_a_note(runs, registry, tmp_path):
    from augrec.data.synthetic import SyntheticConfig, generate

    other = tmp_path / "shop"
    other.mkdir()
    interactions, items = generate(SyntheticConfig(users=200, items=80, seed=11))
    interactions.to_parquet(other / "interactions.parquet", index=False)
    items.to_parquet(other / "items.parquet", index=False)
    prod, _ = registry.register(train_run(other, tmp_path / "prod", "itemknn", {"neighbors": 50}))
    registry.promote(prod.tag)
    check = by_name(run_gate(runs["itemknn"], champion=registry.champion()))["no_regression"]
    assert check["status"] == "skip" and "trained on other data" in check["summary"]


def test_data_must_match_the_fingerprint_and_can_be_pointed_at(runs, tiny_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["itemknn"], run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["data"]["path"] = str(tmp_path / "moved")
    (run / "manifest.json").write_text(json.dumps(manifest))
    verdict = run_gate(run)
    assert by_name(verdict)["data"]["status"] == "fail"
    assert set(verdict["failed"]) == {"data", "reproduces", "floor", "no_regression"}
    assert by_name(verdict)["serving"]["status"] == "pass"  # still answers random histories
    assert run_gate(run, data=tiny_data)["passed"]
    changed = tmp_path / "changed"
    shutil.copytree(tiny_data, changed)
    (changed / "items.parquet").unlink()
    data = by_name(run_gate(run, data=changed))["data"]
    assert data["status"] == "fail" and "not what the candidate was trained on" in data["summary"]


def test_a_model_file_that_does_not_match_its_metrics_fails(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["itemknn"], run)
    shutil.copy(runs["itemknn_b"] / "model.pt", run / "model.pt")
    verdict = run_gate(run)
    assert "reproduces" in verdict["failed"]


def _augmented(run, tmp_path, augmentation):
    out = tmp_path / "augmented"
    shutil.copytree(run, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["augmentation"] = augmentation
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _report(mia_passed=True, copy_passed=True):
    """A synthetic_report.json in the shape augrec.augment.report writes (what the gate reads)."""
    return {
        "passed": bool(mia_passed) and copy_passed,
        "privacy": {
            "exact_copy": {"synthetic_rate": 0.01, "holdout_rate": 0.012},
            "dcr": {"synthetic_median": 0.7, "holdout_median": 0.68},
            "mia": {"auc": 0.51, "attack_auc": 0.51},
        },
        "gates": {
            "exact_copy_rate": {"passed": copy_passed, "value": 0.2, "threshold": 0.05},
            "mia_auc": {"passed": mia_passed, "value": 0.51, "threshold": 0.6}
            if mia_passed is not None
            else {"passed": None, "value": None, "threshold": 0.6, "reason": "no scores"},
        },
    }


@pytest.mark.parametrize(
    ("augmentation", "cfg", "status", "words"),
    [
        ({"method": "gan", "report": _report()}, {}, "pass", "2 privacy checks passed"),
        (
            {"method": "heuristic", "report": _report(copy_passed=False)},
            {},
            "fail",
            "exact_copy_rate 0.2 > 0.05",
        ),
        ({"method": "gan", "report": _report(mia_passed=None)}, {}, "fail", "mia_auc not run"),
        (
            {"method": "gan", "report": _report(mia_passed=None)},
            {"allow_not_run": True},
            "pass",
            "passed",
        ),
        (
            {"method": "gan", "report": _report()},
            {"max": {"mia.attack_auc": 0.5}},
            "fail",
            "mia.attack_auc 0.51 > 0.5",
        ),
        ({"method": "gan", "report": _report()}, {"max": {"nosuch": 1}}, "fail", "nosuch missing"),
        ({"method": "gan"}, {}, "fail", "report was not found"),
    ],
)
def test_privacy_gate_reads_the_synthetic_report(runs, tmp_path, augmentation, cfg, status, words):
    run = _augmented(runs["itemknn"], tmp_path, augmentation)
    check = by_name(run_gate(run, GateConfig(privacy=cfg)))["privacy"]
    assert check["status"] == status and words in check["summary"]


def test_the_manifest_keeps_the_report_so_the_synthetic_set_may_move(tmp_path):
    from augrec.registry.manifest import augmentation_summary

    synth = tmp_path / "synth"
    synth.mkdir()
    (synth / "synthetic_report.json").write_text(json.dumps(_report(copy_passed=False)))
    summary = augmentation_summary({"method": "heuristic", "path": str(synth)})
    assert summary["report"]["gates"]["exact_copy_rate"]["passed"] is False
    assert summary["report"]["passed"] is False and "mia" in summary["report"]["privacy"]
    assert augmentation_summary(None) is None


def test_privacy_report_file_beside_the_synthetic_set(runs, tmp_path):
    synth = tmp_path / "synth"
    synth.mkdir()
    (synth / "synthetic_report.json").write_text(json.dumps(_report(copy_passed=False)))
    run = _augmented(runs["itemknn"], tmp_path, {"method": "heuristic", "path": str(synth)})
    check = by_name(run_gate(run))["privacy"]
    assert check["status"] == "fail" and "exact_copy_rate" in check["summary"]
    assert check["details"]["source"].endswith("synthetic_report.json")


def test_serving_budget_is_enforced(runs):
    cfg = GateConfig(serving={"p99_ms": 1e-6, "requests": 3})
    check = by_name(run_gate(runs["popularity"], cfg))["serving"]
    assert check["status"] == "fail" and "p99" in check["summary"]


def test_paired_test_by_hand():
    import numpy as np

    diff = np.array([-0.1, -0.2, 0.0, -0.1])
    out = paired_regression_test(diff, max_drop=0.0)
    # mean -0.1, sd 0.08165, se 0.04082, t -2.449 on 3 df: one-sided p ~ 0.0459
    assert out["mean_diff"] == pytest.approx(-0.1)
    assert out["t"] == pytest.approx(-2.449, abs=1e-3)
    assert out["p"] == pytest.approx(0.0459, abs=1e-3)
    assert paired_regression_test(diff, max_drop=0.15)["p"] > 0.5  # within the tolerance
