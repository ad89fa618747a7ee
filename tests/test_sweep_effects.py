"""The sweep report explains its effects (issue 20): axes explained by the runs' diagnostics, statistics no
stronger than the data, runs that end below their best, recommendations against what the sweep ran,
variance shares and the pictures. Real sweeps on digits, and hand-made rows for the statistics."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from conftest import read_jsonl, run_module


def analyze(*args):
    return run_module("analysis", [str(a) for a in args], timeout=300)


def report_of(path):
    proc = analyze(path, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def val_acc(run_dir):
    return [r["accuracy"] for r in read_jsonl(run_dir / "diagnostics" / "val_diagnostics.jsonl")]


def lrs(run_dir):
    return [r["learning_rate"] for r in read_jsonl(run_dir / "diagnostics" / "train_diagnostics.jsonl")]


def cut_count(run_dir) -> int:
    lr = lrs(run_dir)
    return sum(1 for a, b in zip(lr, lr[1:]) if b < 0.9 * a)


# ── the statistics (hand-made numbers: the arithmetic, not the training) ──

def test_t_test_and_holm_against_their_textbook_values():
    from analysis.sweep_stats import holm, t_critical, t_pvalue

    assert t_pvalue(2.07, 2) == pytest.approx(0.1743, abs=1e-4)  # the 2.07 SE with n=2 a side: p = 0.17
    assert t_critical(0.05, 2) == pytest.approx(4.303, abs=1e-3) and t_critical(0.05, math.inf) == pytest.approx(1.960,
                                                                                                                abs=1e-3)
    adjusted = holm([0.01, 0.04, 0.03, None])
    assert adjusted[3] is None and adjusted[0] == pytest.approx(0.03) and adjusted[1] == adjusted[2] == pytest.approx(0.06)


def test_identical_records_and_same_seed_reruns_are_one_observation():
    from analysis.sweep_effects import assign_observations, sweep_noise

    rows = [{"job": str(i), "overrides": o, "best_val_accuracy": a, "fingerprint": f, "val_size": 359}
            for i, (o, a, f) in enumerate([
                ({"scheduler.patience": 3, "trainer.seed": 0}, 0.90, "x"),
                ({"scheduler.patience": 5, "trainer.seed": 0}, 0.90, "x"),  # a copy of job 0: patience never acted
                ({"scheduler.patience": 3, "trainer.seed": 0}, 0.91, "y"),  # same seed rerun: no replicate
                ({"scheduler.patience": 5, "trainer.seed": 1}, 0.95, "z")])]
    merged = assign_observations(rows)
    assert sorted(map(sorted, merged)) == [["0", "1", "2"]]
    noise = sweep_noise(rows)
    # one configuration with two distinct seeds? patience 5 has seeds 0 (a copy of patience 3's) and 1: the copy
    # counts in its first configuration only, so no configuration has two observations: the noise is unmeasured
    assert not noise.measured and noise.binomial_sd == pytest.approx(math.sqrt(0.905 * 0.095 / 359), rel=1e-3)


def test_a_2_se_gap_with_two_runs_a_side_is_not_more_than_noise():
    from analysis import compare

    def report(name, mean, std):
        return {"best": {"overrides_cli": [], "overrides": {}, "mean": mean, "std": std, "n": 2},
                "sweep": {"name": name, "path": name, "command": None, "axes": {"trainer.seed": [0, 1]}, "fixed": {},
                          "jobs": {"completed": 2, "found": 2}},
                "replicates": {"values": [0, 1], "noise_sd": std, "noise_dof": 1}, "findings_by_id": {},
                "recommendations": []}

    se = math.sqrt(2 * 0.01 ** 2 / 2)
    data = compare.build([report("a", 0.90, 0.01), report("b", 0.90 + 2.07 * se, 0.01)])
    c = data["comparisons"][0]
    assert c["best_delta"] / c["best_delta_se"] == pytest.approx(2.07)
    assert c["best_delta_dof"] == pytest.approx(2.0) and c["best_delta_within_noise"] is True  # p = 0.17


def test_variance_shares_of_a_replicated_grid():
    from analysis.anova import variance_shares

    rows = []
    for a, b, seed, eps in [(a, b, s, e) for a in (0, 1) for b in (0, 1) for s, e in ((0, -0.01), (1, 0.01))]:
        rows.append({"job": f"{a}{b}{seed}", "overrides": {"optimizer.lr": a, "regularization.label_smoothing": b,
                                                          "trainer.seed": seed},
                     "best_val_accuracy": 0.5 + 0.1 * a + eps})
    v = variance_shares(rows, {"optimizer.lr": [0, 1], "regularization.label_smoothing": [0, 1], "trainer.seed": [0, 1]})
    shares = {tuple(t["term"]): t for t in v["terms"]}
    # SS_lr = 8 x 0.05^2 = 0.02, within = 8 x 0.01^2 = 0.0008 (4 dof): lr's share 0.02 / 0.0208
    assert shares[("optimizer.lr",)]["share"] == pytest.approx(0.02 / 0.0208)
    assert shares[("regularization.label_smoothing",)]["share"] == pytest.approx(0.0, abs=1e-12)
    assert shares[("optimizer.lr", "regularization.label_smoothing")]["share"] == pytest.approx(0.0, abs=1e-12)
    assert v["noise_share"] == pytest.approx(0.0008 / 0.0208) and v["noise_dof"] == 4
    assert shares[("optimizer.lr",)]["beyond_noise"] and not shares[("regularization.label_smoothing",)]["beyond_noise"]
    # without replicates: no floor, and the report says so
    v = variance_shares([r for r in rows if r["overrides"]["trainer.seed"] == 0],
                        {"optimizer.lr": [0, 1], "regularization.label_smoothing": [0, 1]})
    assert v["noise_share"] is None and "no noise floor" in v["note"]


@pytest.mark.slow  # importing Optuna (and scikit-learn) takes 5-13 s here
def test_a_search_that_is_no_grid_gets_optunas_importance_or_says_why():
    from analysis.anova import variance_shares

    rows = [{"job": str(i), "overrides": {"optimizer.lr": 0.01 * (1 + i), "regularization.label_smoothing": 0.01 * (i % 5)},
             "best_val_accuracy": 0.8 + 0.01 * (i % 5)} for i in range(12)]
    axes = {"optimizer.lr": [r["overrides"]["optimizer.lr"] for r in rows],
            "regularization.label_smoothing": [0.0, 0.01, 0.02, 0.03, 0.04]}
    assert "not a complete grid" in variance_shares(rows, axes)["note"]  # a grid sweep with holes: no shares
    v = variance_shares(rows, axes, search=True)  # an Optuna search
    try:
        import optuna  # noqa: F401
    except ImportError:
        assert v["method"] is None and "Optuna is not installed" in v["note"]
        return
    assert v["method"] == "optuna" and sum(t["share"] for t in v["terms"]) == pytest.approx(1.0)
    top = max(v["terms"], key=lambda t: t["share"])
    assert top["term"] == ["regularization.label_smoothing"]  # the accuracy follows it exactly


def test_a_live_finding_never_clears_on_the_epoch_that_makes_the_run_worse(monkeypatch, tmp_path):
    import trainer.live as live_mod
    from analysis.findings import Finding

    held = {3: ["loss_oscillating"], 4: ["loss_oscillating"]}
    monkeypatch.setattr(live_mod, "diagnose", lambda run: [Finding(i, "warning", i) for i in held.get(run.last_epoch, [])])
    lf = live_mod.LiveFindings({}, {}, [], [], [], 1, tmp_path)
    accuracy = {1: 0.5, 2: 0.8, 3: 0.6, 4: 0.9, 5: 0.4, 6: 0.95}  # epoch 5 is worse than 4: nothing clears there
    for epoch in range(1, 7):
        lf.epoch_end(epoch, {"epoch": epoch, "loss": 1.0}, {"epoch": epoch, "accuracy": accuracy[epoch]})
    entry = json.loads((tmp_path / "live_findings.json").read_text())["findings"][0]
    assert entry["epochs"] == [[3, 5]] and not entry["active"]  # held through the fall, cleared at the recovery


# ── real runs ──

def test_a_run_that_ends_far_below_its_best_gets_a_finding(run_ends_below):
    acc = val_acc(run_ends_below)
    assert cut_count(run_ends_below) == 0  # patience 4 in 6 epochs: a constant LR
    best, final = max(acc), acc[-1]
    proc = analyze(run_ends_below, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    found = {f["id"]: f for f in report["findings"]}
    assert final < best - 0.1, acc  # what this fixture is for: the run swings down at its last epoch
    f = found["ended_below_best"]
    assert f["evidence"]["drop"] == pytest.approx(best - final) and f["evidence"]["drop"] > f["evidence"]["threshold"]
    assert f["evidence"]["noise_source"] == "binomial"
    assert any(r["overrides"] == ["scheduler.patience=2"] for r in f["recommendations"])  # cut sooner: it never cut
    never = found["lr_never_cut"]  # what a sweep calls "not exercised", said in the run's own report
    assert never["severity"] == "info" and never["evidence"]["patience"] == 4 and never["evidence"]["epochs"] == 6
    assert "never cut the LR in 6 epochs" in never["message"]
    # the live record never says a finding cleared on an epoch whose accuracy fell
    live = run_ends_below / "diagnostics" / "live_findings.json"
    if live.exists():
        for e in json.loads(live.read_text())["findings"]:
            for _, last in e["epochs"]:
                if last < len(acc):
                    assert acc[last] >= acc[last - 1], (e["id"], e["epochs"], acc)


def test_an_axis_that_never_acted_is_not_exercised(sweep_2x2):
    """sweep_2x2: plateau patience 1 or 3 over 2 epochs, where no cut can happen: the README's old case."""
    report = report_of(sweep_2x2)
    assert all(cut_count(sweep_2x2 / str(n)) == 0 for n in range(4))
    patience = next(a for a in report["axes"] if a["key"] == "scheduler.patience")
    assert patience["effect"] == "not exercised" and "no run cut the LR within 2 epochs" in patience["not_exercised_why"]
    explained = next(a for a in report["explained"]["axes"] if a["key"] == "scheduler.patience")
    assert explained["headline"].startswith("scheduler.patience was not exercised") and not explained["tests"]
    # the runs that differ only in patience have identical records: one observation each pair
    merged = sorted(map(sorted, report["explained"]["merged_observations"]))
    same = [sorted([str(a), str(b)]) for a, b in ((0, 2), (1, 3))
            if val_acc(sweep_2x2 / str(a)) == val_acc(sweep_2x2 / str(b)) and lrs(sweep_2x2 / str(a)) == lrs(sweep_2x2 / str(b))]
    assert same and all(pair in merged for pair in same)
    assert not any("ties with" in n and "scheduler.patience" in n for n in report["best"]["edge_notes"])
    assert any("scheduler.patience was not exercised" in n for n in report["best"]["edge_notes"])
    assert report["variance"].get("not_exercised") == ["scheduler.patience"] or report["variance"]["method"] is None
    text = analyze(sweep_2x2).stdout
    assert "scheduler.patience was not exercised: no run cut the LR" in text and "(not exercised:" in text


def test_two_sweeps_compared_show_recommendations_and_the_t_test(sweep_2x2, run_ends_below, tmp_path):
    sweep = tmp_path / "with_copy"
    shutil.copytree(sweep_2x2, sweep, ignore=shutil.ignore_patterns("checkpoints", "analysis"))
    shutil.copytree(run_ends_below, sweep / "4", ignore=shutil.ignore_patterns("checkpoints"))
    proc = analyze(sweep_2x2, sweep, "--out", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    c = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["comparisons"][0]
    assert "ended_below_best" in c["findings_appeared"]
    assert any(k.startswith("let the plateau scheduler cut sooner") for k in c["recommendations_appeared"])
    assert "recommendation appeared: let the plateau scheduler cut sooner" in proc.stdout
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "<h3>Recommendations</h3>" in html and "cut sooner" in html


@pytest.mark.slow
def test_three_axis_sweep_is_explained_by_its_runs_diagnostics(sweep_3axes, tmp_path):
    """patience 0,4 x smoothing 0,0.2 x seed 0,1 in 6 epochs: every statement checked against the runs' files."""
    report = report_of(sweep_3axes)
    rows = {r["job"]: r for r in report["runs"]}
    cuts = {j: cut_count(sweep_3axes / j) for j in rows}
    by_patience = {p: [j for j, r in rows.items() if r["overrides"]["scheduler.patience"] == p] for p in (0, 4)}
    assert all(cuts[j] == 0 for j in by_patience[4]) and any(cuts[j] for j in by_patience[0])
    axis = next(a for a in report["explained"]["axes"] if a["key"] == "scheduler.patience")
    level = {lv["value"]: lv for lv in axis["levels"]}
    assert level[4]["runs_with_cuts"] == 0 and level[0]["runs_with_cuts"] == sum(1 for j in by_patience[0] if cuts[j])
    assert axis["exercised"] and "scheduler.patience=4 never cut the LR within 6 epochs" in axis["headline"]
    # a run that ends far below its best: its row is flagged, with the numbers of its own JSONL
    below = [j for j, r in rows.items() if "ended_below_best" in r["findings"]]
    assert below
    for j in below:
        acc = val_acc(sweep_3axes / j)
        assert max(acc) - acc[-1] > 0.1 and any(f.startswith(f"ended {max(acc) - acc[-1]:.4f} below its own best")
                                                for f in rows[j]["flags"])
    # a recommendation checked against what the sweep ran
    recs = report["explained"]["recommendations"]
    sooner = next(r for r in recs if r["text"].startswith("let the plateau scheduler cut sooner"))
    assert sorted(sooner["runs"]) == sorted(below)
    check = sooner["checks"][0]
    assert check["ran"] and check["value"] == 0 and check["n_b"] == len(below)
    # variance shares with the replicates' floor, and the comparison of identical runs counted once
    v = report["variance"]
    assert v["method"] == "anova" and v["noise_share"] is not None and v["noise_dof"] >= 1
    assert sum(t["share"] for t in v["terms"]) + v["higher_order_share"] + v["noise_share"] == pytest.approx(1.0)
    text, md = analyze(sweep_3axes).stdout, analyze(sweep_3axes, "--format", "markdown").stdout
    for out in (text, md.replace("\\_", "_")):
        assert "scheduler.patience=4 never cut the LR within 6 epochs" in out and "ended_below_best" in out
    # the HTML as a user sees it: parallel coordinates (one line per run) and per-value curves with bands
    proc = analyze(sweep_3axes, "--out", tmp_path / "rep")
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "rep" / "report.html"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        html = page.read_text()
        assert html.count("colored by primary cause") == 1 and html.count("<polygon") == 4
        return
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=90).stdout
    assert "colored by primary cause" in dom and dom.count("<polygon") == 4  # 2 axes x 2 values, one band each
    assert dom.count("<title>job ") == len(rows)
