"""A diverging run: non-finite losses and gradient norms are counted, and written as null (strict JSON)."""

from __future__ import annotations

from conftest import train_here
from reliability_helpers import read_jsonl_strict, strict_json


def test_huge_learning_rate_counts_nonfinite_steps_and_writes_null(tmp_path, one_thread):
    # stop_on=[]: this test is about what gets recorded, so the run must go on after the first NaN.
    _, train, val = train_here(tmp_path, ["trainer.epochs=2", "optimizer.lr=1e6", "scheduler=constant",
                                          "trainer.device=cpu", "model.width=4", "data.image_size=16",
                                          "data.batch_size=128", "trainer.stop_on=[]"])
    diag = tmp_path / "diagnostics"
    for name in ("train_diagnostics.jsonl", "val_diagnostics.jsonl"):
        text = (diag / name).read_text()
        assert "NaN" not in text and "Infinity" not in text
        records, tail = read_jsonl_strict(diag / name)  # refuses NaN / Infinity tokens
        assert len(records) == 2 and tail == b""

    first, last = train
    assert first["nonfinite_steps"] > 0  # it diverges within the first epoch...
    assert last["nonfinite_steps"] == last["num_batches"]  # ...and never comes back
    assert last["nonfinite_grad_steps"] == last["num_batches"]
    assert last["loss"] is None and last["mean_grad_norm"] is None and last["weight_update"] is None
    assert all(v is None for v in last["layer_grad_norms"].values())
    assert 0 <= last["accuracy"] <= 1  # still a number: argmax of NaN logits is some class
    assert [r["loss"] for r in val] == [None, None] and val[1]["nll"] is None
    status = strict_json((diag / "status.json").read_text())
    assert status["status"] == "completed"
