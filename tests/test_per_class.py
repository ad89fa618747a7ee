"""Per-class results: the validation confusion matrix the trainer records, the analysis' per-class object and
rules, and the HTML heatmap. Real runs on digits; the rules' edges on matrices built by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import run_report
from analysis.per_class import HEATMAP_MAX, at_chance, collapse, per_class, wilson
from analysis.render.heatmap import confusion_svg, per_class_html
from analysis.rules import diagnose
from conftest import read_jsonl, train_here
from rundir import format as fmt
from rundir.read import load_run, run_from_records
from trainer.config import validate
from conftest import compose

TINY = ["trainer.device=cpu", "model.width=4", "data.image_size=16"]


def test_a_clean_run_records_a_sane_confusion_matrix(digits_run):
    val = read_jsonl(digits_run / fmt.DIAGNOSTICS / fmt.VAL_JSONL)
    info = json.loads((digits_run / fmt.DIAGNOSTICS / fmt.RUN_INFO).read_text())
    for r in val:
        m = np.array(r[fmt.CONFUSION_FIELD])
        assert m.shape == (10, 10) and m.sum() == r["num_samples"] == info["val_size"]
        assert m.sum(axis=1).tolist() == info["val_class_counts"]  # rows: the true classes
        assert np.trace(m) / m.sum() == pytest.approx(r["accuracy"], abs=1e-12)
    last = np.array(val[-1][fmt.CONFUSION_FIELD])
    assert np.trace(last) > 0.5 * last.sum()
    assert (last.argmax(axis=1) == np.arange(10)).sum() >= 8  # diagonal-dominant rows
    report = run_report.build(load_run(digits_run))
    pc = report["per_class"]
    assert pc["total"] == info["val_size"] and len(pc["classes"]) == 10 and pc["never_predicted"] == []
    assert all(c["ci"][0] <= c["accuracy"] <= c["ci"][1] for c in pc["classes"])
    assert not {"class_never_predicted", "class_at_chance", "majority_class_collapse"} & {f["id"] for f in report["findings"]}
    assert any(s["title"] == "Per-class results" for s in report["sections"])


def test_many_classes_put_the_matrices_in_their_own_file_and_the_reader_joins_them(tmp_path, one_thread):
    c = fmt.CONFUSION_INLINE_MAX + 5
    _, _, val = train_here(tmp_path, TINY + ["data=fake", f"data.num_classes={c}", "data.size=300", "trainer.epochs=2"])
    assert all(fmt.CONFUSION_FIELD not in r for r in val)
    side = read_jsonl(tmp_path / "diagnostics" / fmt.CONFUSION_JSONL)
    assert [r["epoch"] for r in side] == [1, 2]
    for r, s in zip(val, side):
        m = np.array(s[fmt.CONFUSION_FIELD])
        assert m.shape == (c, c) and m.sum() == r["num_samples"] == 60
    run = load_run(tmp_path)
    pc = per_class(run)
    assert pc["num_classes"] == c and pc["total"] == 60 and pc["epoch"] == 2
    assert pc["heatmap"]["shown"] == min(c, HEATMAP_MAX)


def test_an_imbalanced_training_set_is_diagnosed_from_its_per_class_results(tmp_path, one_thread):
    """fault=class_imbalance at 0.95 (class 0 has 20x each other class's images): the model collapses onto class 0."""
    train_here(tmp_path, TINY + ["fault=class_imbalance", "trainer.epochs=5"])
    run = load_run(tmp_path)
    assert run.info["class_counts"][0] >= 19 * max(run.info["class_counts"][1:])
    report = run_report.build(run)
    found = {f["id"]: f for f in report["findings"]}
    assert {"class_imbalance", "class_never_predicted", "majority_class_collapse"} <= set(found)
    assert found["majority_class_collapse"]["evidence"]["class"] == 0
    imbalance = found["class_imbalance"]["evidence"]
    assert set(imbalance["rarest_classes"]) and "0" in imbalance["largest_classes"]
    assert all(v["val_accuracy"] < imbalance["largest_classes"]["0"]["val_accuracy"]
               for v in imbalance["rarest_classes"].values())
    assert report["cause"]["primary"]["id"] == "data:class_imbalance"
    fixes = [o for r in report["cause"]["primary"]["recommendations"] for o in r["overrides"]]
    assert fixes[:2] == ["fault=none", "regularization.class_weights=balanced"]
    validate(compose(["fault=class_imbalance", *fixes[1:]]))  # the advice composes on the run's command line


def test_a_class_balanced_loss_weighs_rare_classes_up():
    import torch

    from trainer.loop import class_weights

    w = class_weights("balanced", [90, 10, 0], torch.device("cpu"))
    assert w.tolist() == pytest.approx([100 / (3 * 90), 100 / (3 * 10), 1.0])
    assert class_weights("none", [90, 10], torch.device("cpu")) is None


def test_wilson_intervals_match_the_textbook_values():
    lo, hi = wilson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert lo[0] == 0 and hi[0] == pytest.approx(0.2775, abs=1e-4)
    assert (lo[1], hi[1]) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert hi[2] == 1 and lo[2] == pytest.approx(0.7225, abs=1e-4)


def _matrix(c=5, n=40, weak=None, weak_correct=0, never=None):
    m = np.diag(np.full(c, n - 2))
    m[np.arange(c), (np.arange(c) + 1) % c] += 2
    if weak is not None:
        m[weak] = 0
        m[weak, weak] = weak_correct
        m[weak, (weak + 1) % c] = n - weak_correct
    if never is not None:
        m[:, (never + 1) % c] += m[:, never]
        m[:, never] = 0
    return m


def _run(mats, counts=None):
    val = [{"epoch": e + 1, "accuracy": float(np.trace(m) / m.sum()), "num_samples": int(m.sum()),
            fmt.CONFUSION_FIELD: m.tolist()} for e, m in enumerate(mats)]
    c = mats[0].shape[0]
    info = {"num_classes": c, "class_counts": counts or [100] * c, "val_size": int(mats[0].sum())}
    return run_from_records([], val, info=info, config={"data": {"num_classes": c}, "fault": {"name": "none"}})


def test_a_class_at_chance_while_the_others_learn_needs_its_interval_to_reach_chance():
    c = 5  # chance 0.2
    assert set(at_chance(_matrix(c, weak=2, weak_correct=4))) == {2}  # 4/40: at chance
    assert at_chance(_matrix(c, weak=2, weak_correct=16)) == {}  # 16/40 = 0.4: above chance
    assert at_chance(_matrix(c)) == {}
    run = _run([_matrix(c, weak=2, weak_correct=4)] * 3)
    f = next(f for f in diagnose(run) if f.id == "class_at_chance")
    assert list(f.evidence["classes"]) == ["2"] and f.evidence["most_confused_with"]["2"] == 3
    assert ["regularization.class_weights=balanced"] in [r.overrides for r in f.recommendations]


def test_a_class_never_predicted_must_stay_unpredicted_for_the_last_epochs():
    healthy, never = _matrix(), _matrix(never=1)
    assert "class_never_predicted" in {f.id for f in diagnose(_run([healthy, never, never, never]))}
    assert "class_never_predicted" not in {f.id for f in diagnose(_run([never, never, healthy, never]))}


def test_a_collapse_onto_a_class_is_a_majority_collapse_only_when_that_class_dominates_training():
    m = np.zeros((4, 4), dtype=int)
    m[:, 0] = 30  # everything predicted as class 0, a quarter of the labels
    assert collapse(m)["class"] == 0
    balanced = {f.id for f in diagnose(_run([m] * 3))}
    assert "majority_class_collapse" not in balanced and "class_never_predicted" in balanced
    dominated = {f.id: f for f in diagnose(_run([m] * 3, counts=[900, 30, 30, 30]))}
    assert dominated["majority_class_collapse"].severity == "critical"
    near = np.diag([30, 30, 30, 30])
    near[:, 0] += 10  # class 0 over-predicted, but far from all predictions
    assert collapse(near) is None


def test_the_heatmap_escapes_class_names_and_stays_readable_for_100_classes():
    rng = np.random.default_rng(0)
    c = 100
    m = rng.integers(0, 3, size=(c, c)) + np.diag(rng.integers(10, 60, size=c))
    run = _run([m] * 3)
    run.info["class_names"] = [f"<script>alert({i})</script>" for i in range(c)]
    pc = per_class(run)
    hm = pc["heatmap"]
    assert hm["shown"] == HEATMAP_MAX and hm["of"] == c
    recall = [pc["classes"][i]["accuracy"] for i in hm["classes"]]
    assert recall == sorted(recall)  # worst first
    errors = m.sum(0) + m.sum(1) - 2 * np.diag(m)
    assert min(errors[hm["classes"]]) >= sorted(errors)[-HEATMAP_MAX]  # the classes with the most errors
    svg = confusion_svg(hm)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count("<rect") == HEATMAP_MAX ** 2
    assert "".join(per_class_html(pc)).count("<svg") == 1 and per_class_html(None) == []
