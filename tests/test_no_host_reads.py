"""The step loop never reads a tensor's value on the host: a CPU stand-in for tests/test_gpu.py.

On CUDA, reading a value (`.item()`, `float(t)`, `if t:`, `.tolist()`, `.cpu()`...) waits for the
GPU to finish everything queued: one such read per step costs the overlap that makes the fast path
fast. tests/test_gpu.py proves the absence of syncs with `torch.cuda.set_sync_debug_mode("error")`,
but only where a GPU is. Here the real `train()` runs on CPU with every Python-level way of reading a
value turned into an error from the second step of each epoch to its last: the same window, checked
on every machine, on the device loader (the GPU fast path's data side) and on the DataLoader path.
The first step is left out, as there (lazy initialisation), and so is the epoch's end, where the
loop reads the device once on purpose.
"""

from __future__ import annotations

import pytest
import torch

from conftest import guard_train_steps, train_here

HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")
ORIGINAL = {name: torch.Tensor.__dict__.get(name) for name in HOST_READS}


class HostRead(AssertionError):
    pass


def _refuse(name: str):
    def read(self, *args, **kwargs):
        raise HostRead(f"Tensor.{name} inside a training step")
    return read


def forbid() -> None:
    for name in HOST_READS:
        setattr(torch.Tensor, name, _refuse(name))


def allow() -> None:
    for name, method in ORIGINAL.items():
        if method is None:
            if name in torch.Tensor.__dict__:
                delattr(torch.Tensor, name)
        else:
            setattr(torch.Tensor, name, method)


@pytest.fixture
def guarded(monkeypatch):
    # The DataLoader path's transforms read values on the CPU by design: only its steps are guarded.
    yield guard_train_steps(monkeypatch, forbid, allow, guard_loader=("device",))
    allow()  # a failing step leaves the generator suspended with reads forbidden


@pytest.mark.parametrize("loader", ["device", "dataloader"])
@pytest.mark.parametrize("extra", [[], ["trainer.amp=bf16", "regularization.grad_clip=0.5"]],
                         ids=["fp32", "bf16+clip"])
def test_training_steps_read_no_tensor_on_the_host(tmp_path, guarded, one_thread, loader, extra):
    _, train, _ = train_here(tmp_path, ["trainer.device=cpu", "trainer.epochs=2", "augmentation=basic",
                                        f"data.loader={loader}", "data.batch_size=256", "model.width=8", *extra])
    [guard] = guarded
    assert guard.guarded_steps == 2 * (len(guard) - 1) > 0
    assert [r["epoch"] for r in train] == [1, 2] and all(r["nonfinite_steps"] == 0 for r in train)
    assert "dead_relu_fraction" in train[-1]  # the activation probe ran inside the window


def test_the_guard_catches_a_host_read():
    x = torch.ones(2)
    forbid()
    try:
        for read, name in ((lambda: x.sum().item(), "Tensor.item"), (lambda: bool(x.sum() > 0), "__bool__"),
                           (lambda: float(x.sum()), "__float__"), (lambda: [0, 1][x.long()[0]], "__index__")):
            with pytest.raises(HostRead, match=name):
                read()
    finally:
        allow()
    assert x.sum().item() == 2.0 and bool(x.all()) and float(x[0]) == 1.0  # put back afterwards


def test_recording_validation_predictions_reads_no_tensor_on_the_host():
    """What each validation batch adds (trainer/val_predictions.py) is device work only; the host read comes
    once, in gather(), and puts every image's row at its index (here rank 1 of 2: indices 1, 3, 5, ...)."""
    from trainer.val_predictions import ValPredictions

    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(10, 20, generator=g), torch.randint(0, 20, (10,), generator=g)
    recorder = ValPredictions(torch.arange(1, 20, 2), 20, 20, torch.device("cpu"))
    recorder.start()
    forbid()
    try:
        for batch in (slice(0, 4), slice(4, 10)):
            recorder.record(logits[batch], y[batch])
    finally:
        allow()
    a = recorder.gather()
    p = logits.softmax(dim=1)
    assert (a["label"][1::2] == y.numpy()).all() and (a["label"][0::2] == -1).all()  # the other rank's: unseen
    assert torch.allclose(torch.from_numpy(a["label_probability"][1::2]).float(), p[torch.arange(10), y], atol=1e-3)
    top = p.topk(16, dim=1)
    assert (a["classes"][1::2] == top.indices.numpy()).all() and a["classes"].shape == (20, 16)
    assert torch.allclose(torch.from_numpy(a["probabilities"][1::2]).float(), top.values, atol=1e-3)
