"""Per-epoch training diagnostics, collected on the device with no host sync inside a step.

Each step adds to device tensors: sums and counts in one small accumulator, per-step gradient and
update norms written by index into preallocated buffers, per-layer gradient norms summed in place.
`end_epoch()` moves everything to the host in one transfer and returns the JSONL record. Norms come
from torch's foreach kernels (one launch for all parameters), never a Python loop of `.item()`s.

Under DDP (`distributed.py`) each rank collects on its own share of every batch; `end_epoch()` and
`evaluate()` reduce across ranks just before their host read: one SUM all-reduce of what adds up
(loss and accuracy sums, counts, per-step losses, ReLU activity per channel) and one MAX all-reduce
of (x, -x) for the gradient norms, which DDP makes identical on every rank (their spread is recorded
as a check). The record then means what it means in one process with the same global batch.

The record's field names are a public interface (the analysis and users' jq lines read them):
add fields, never rename one. Each is listed with its unit and meaning in rundir/format.py (FIELDS);
tests/test_rundir.py trains a run and checks that the two agree.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from . import distributed
from .per_sample import SampleRecorder
from .val_predictions import ValPredictions

# Slots of the per-epoch accumulator.
LOSS_SUM, FINITE_SAMPLES, CORRECT, SAMPLES, NONFINITE_LOSS, NONFINITE_GRAD, CLIPPED, UPDATES, UPDATE_SUM, \
    RATIO_SUM = range(10)
N_SLOTS = 10
# Slots [0, PER_RANK) count each rank's own samples: summed across DDP ranks. The others follow the
# gradients and weights, which DDP keeps identical on every rank: read locally.
PER_RANK = NONFINITE_LOSS + 1


def finite_or_none(x: float) -> Optional[float]:
    """JSON has no NaN or Infinity: non-finite values are written as null (and counted elsewhere)."""
    x = float(x)
    return x if math.isfinite(x) else None


class ActivationProbe:
    """Share of dead ReLU channels on one batch: hooks attached for a single forward pass.

    A channel is dead on the batch when it is positive for fewer than 1 % of its outputs
    (SageMaker Debugger's DeadRelu `threshold_inactivity`).
    """

    INACTIVE = 0.01

    def __init__(self, model: nn.Module):
        self.relus = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
        self.handles: list = []
        self.stats: dict[str, torch.Tensor] = {}  # layer -> per-channel share of positive outputs
        self.layout: list[tuple[str, int]] = []

    def attach(self) -> None:
        for name, module in self.relus:
            self.handles.append(module.register_forward_hook(self._hook(name)))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _hook(self, name: str):
        def hook(_module, _inputs, out):
            with torch.no_grad():
                dims = [d for d in range(out.dim()) if d != 1] if out.dim() > 1 else [0]
                # Share of positive outputs per channel. A ReLU's output is >= 0, so sign() is 1 where
                # it is positive and 0 elsewhere: one pass, ~6x cheaper on CPU than (out > 0).float()
                # (benchmarks/diagnostics_overhead.py). A NaN output makes its channel count as inactive.
                # Kept per channel, not thresholded, so DDP ranks can average it exactly.
                self.stats[name] = torch.sign(out).mean(dim=dims, dtype=torch.float32).nan_to_num_(0.0).reshape(-1)
        return hook

    def activity(self) -> torch.Tensor:
        """Every probed layer's per-channel active share, concatenated (empty before the probe step).

        Kept per channel, not as a dead share, so DDP ranks can average it exactly before thresholding.
        """
        self.layout = [(n, t.numel()) for n, t in self.stats.items()]
        flat = torch.cat(list(self.stats.values())) if self.stats else torch.zeros(0)
        self.stats.clear()
        return flat

    def summarize(self, activity: np.ndarray) -> dict:
        """{layer: dead share}, plus the overall zero share, from `activity()`'s values."""
        if not self.layout:
            return {}
        dead, zero, start = {}, [], 0
        for name, size in self.layout:
            active = activity[start:start + size]
            start += size
            dead[name] = float((active < self.INACTIVE).mean())
            zero.append(1 - float(active.mean()))
        return {
            "dead_relu_fraction": max(dead.values()),
            "relu_zero_fraction": float(np.mean(zero)),
            "dead_relu_layers": {n: round(v, 4) for n, v in dead.items()},
        }


class Collector:
    """Accumulates one epoch of training diagnostics on the device.

    The loop calls, per step: `on_loss`, then (after backward and AMP unscaling) `grad_norm`, then
    `before_update` / `after_update` around the optimizer step. With `enabled=False` only loss and
    accuracy are kept (what any loop computes), to measure the overhead of the rest.
    """

    def __init__(self, model: nn.Module, steps_per_epoch: int, device: torch.device,
                 grad_clip: Optional[float], update_every: int = 1, enabled: bool = True,
                 probe_activations: bool = True, labels: Optional[torch.Tensor] = None):
        self.enabled = enabled
        # Each training image's loss, margin and prediction (per_sample.py), given the training labels.
        self.samples = SampleRecorder(labels, device) if labels is not None else None
        self.sample_arrays: Optional[dict] = None  # the last epoch's, from end_epoch()
        self.device = device
        self.steps = max(1, steps_per_epoch)
        self.grad_clip = grad_clip
        self.update_every = update_every
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        # "Layers" are weight tensors of convs and linears (ndim > 1): where vanishing gradients show.
        self.layer_index = [i for i, p in enumerate(self.params) if p.dim() > 1]
        self.layer_names = [self.names[i].removesuffix(".weight") for i in self.layer_index]
        self._layer_index_t = torch.tensor(self.layer_index, device=device, dtype=torch.long)
        self.probe = ActivationProbe(model) if enabled and probe_activations else None
        self._prev: Optional[list[torch.Tensor]] = None
        # running_loss(): an asynchronous copy of the loss sums for the progress display (CUDA).
        self._poll_host: Optional[torch.Tensor] = None
        self._running: Optional[float] = None
        self.start_epoch()

    # ── per epoch ──
    def start_epoch(self) -> None:
        self.step = 0
        self._running = None  # the progress display shows no loss until this epoch's first copy lands
        self._poll_event = None  # nor the last epoch's copy, still in flight or landed
        self.acc = torch.zeros(N_SLOTS, device=self.device, dtype=torch.float64 if self.device.type != "mps" else torch.float32)
        if self.enabled:
            # Per step, per parameter tensor: gradient norms, and (on measured steps) the update's and
            # the weight's norms. Reduced once at the epoch's end, so a step costs few torch calls.
            n = len(self.params)
            self.param_norms = torch.full((self.steps, n), float("nan"), device=self.device)
            self.update_norms = torch.full((self.steps, 2 * n), float("nan"), device=self.device)
            self.step_losses = torch.full((self.steps,), float("nan"), device=self.device)
            if self.samples is not None:
                self.samples.start_epoch()

    def order_samples(self, order: torch.Tensor, skip: int = 0) -> None:
        """This rank's training indices for the epoch in step order (data.epoch_indices); skip: the indices
        of the steps a resumed epoch already took."""
        if self.samples is not None:
            self.samples.set_order(order, skip)

    def is_probe_step(self, step: int) -> bool:
        """The epoch's last step samples activations (state closest to the epoch's end)."""
        return self.probe is not None and step == self.steps - 1

    # ── per step ──
    def on_loss(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        safe = torch.where(finite, loss, torch.zeros_like(loss))
        n = targets.shape[0]
        logits = logits.detach()
        correct = (logits.argmax(dim=1) == targets).sum()
        if self.enabled and self.samples is not None:
            self.samples.record(logits)
        acc = self.acc
        acc[LOSS_SUM] += safe * n
        acc[FINITE_SAMPLES] += finite * n
        acc[CORRECT] += correct
        acc[SAMPLES] += n
        acc[NONFINITE_LOSS] += ~finite
        if self.enabled and self.step < self.steps:
            self.step_losses[self.step] = loss

    # On CPU and for small models the cost of these per-step calls is the number of torch calls, not
    # the arithmetic (each dispatch costs microseconds): they use few calls, and what can wait for
    # the epoch's end (non-finite and clipped counts, from grad_norms) waits.

    def grad_norm(self) -> Optional[torch.Tensor]:
        """Global gradient norm (a device scalar), recorded before any clipping; None when disabled."""
        if not self.enabled:
            return None
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        norms = torch._foreach_norm(grads)
        if self.step >= self.steps:  # more steps than planned (never in the loop): measure, keep nothing
            return torch.linalg.vector_norm(torch.stack(norms))
        row = torch.stack(norms, out=self.param_norms[self.step])
        # The global norm is needed now only to clip; otherwise the epoch's end derives it from the row.
        return torch.linalg.vector_norm(row) if self.grad_clip is not None else None

    def before_update(self) -> None:
        if self.enabled and self.step % self.update_every == 0:
            with torch.no_grad():  # no_grad: the parameters can be read directly, no detach() per tensor
                if self._prev is None:
                    self._prev = [p.detach().clone() for p in self.params]
                else:
                    torch._foreach_copy_(self._prev, self.params)

    def after_update(self) -> None:
        if self.enabled and self.step % self.update_every == 0:
            with torch.no_grad():
                # _prev becomes (before - after), the update negated (only its norm is used), in place:
                # no new tensors per step. One foreach call takes the norms of the update and of the
                # weights together; the three sums go into the accumulator in one add.
                torch._foreach_sub_(self._prev, self.params)
                if self.step < self.steps:
                    torch.stack(torch._foreach_norm(self._prev + self.params), out=self.update_norms[self.step])
        self.step += 1

    # ── mid-epoch checkpoints (a preempted run resumes inside the epoch) ──
    def state_dict(self) -> dict:
        state = {"step": self.step, "acc": self.acc.cpu()}
        if self.enabled:
            state.update(param_norms=self.param_norms.cpu(), update_norms=self.update_norms.cpu(),
                         step_losses=self.step_losses.cpu())
            if self.samples is not None:
                self.samples.flush()  # the steps taken so far, into the rows the checkpoint keeps
                state.update(sample_rows=self.samples.rows.cpu())
        return state

    def load_state_dict(self, state: dict, device: torch.device, counts: bool = True) -> None:
        """counts=False (DDP ranks other than 0): the per-rank sums start at zero; rank 0 carries the
        saved ones, so their all-reduce counts them once."""
        self.step = int(state["step"])
        self.acc = state["acc"].to(device)
        if not counts:
            self.acc[:PER_RANK] = 0
        if self.enabled and "param_norms" in state:
            self.param_norms = state["param_norms"].to(device)
            self.update_norms = state["update_norms"].to(device)
            self.step_losses = state["step_losses"].to(device)
        if self.enabled and self.samples is not None and "sample_rows" in state:
            self.samples.rows = state["sample_rows"].to(device)
            if not counts:  # DDP: rank 0 carries the rows of the steps already taken
                self.samples.rows.zero_()

    def running_loss(self) -> Optional[float]:
        """Mean loss so far this epoch, for the progress display; never waits for the device.

        On CUDA it starts a copy into pinned memory and returns the value of the previous copy once
        that has landed (None until then): the display lags a refresh, the step loop never syncs.
        """
        if self.device.type != "cuda":
            loss_sum, samples = self.acc[LOSS_SUM].item(), self.acc[SAMPLES].item()
            return loss_sum / max(samples, 1)
        if self._poll_event is not None and self._poll_event.query():
            loss_sum, samples = self._poll_host[LOSS_SUM].item(), self._poll_host[SAMPLES].item()  # host memory
            self._running = loss_sum / max(samples, 1)
            self._poll_event = None
        if self._poll_event is None:
            if self._poll_host is None:
                self._poll_host = torch.empty(PER_RANK, dtype=self.acc.dtype, pin_memory=True)
            self._poll_host.copy_(self.acc[:PER_RANK], non_blocking=True)
            self._poll_event = torch.cuda.Event()
            self._poll_event.record()
        return self._running

    # ── end of epoch: one reduction across DDP ranks, one transfer ──
    def end_epoch(self) -> dict:
        if self.enabled:  # what the steps left to the epoch's end: global norms, counts, update norms
            self.grad_norms = torch.linalg.vector_norm(self.param_norms, dim=1)  # NaN rows: steps not run
            self.layer_sums = self.param_norms[: min(self.step, self.steps)].index_select(
                1, self._layer_index_t).sum(dim=0)
            norms = self.grad_norms[: min(self.step, self.steps)]
            self.acc[NONFINITE_GRAD] += (~torch.isfinite(norms)).sum()
            if self.grad_clip is not None:
                self.acc[CLIPPED] += (norms > self.grad_clip).sum()
            measured = self.update_norms[: min(self.step, self.steps): self.update_every].view(-1, 2, len(self.params))
            update, weight = torch.linalg.vector_norm(measured, dim=2).unbind(dim=1)
            self.acc[UPDATES] += measured.shape[0]
            self.acc[UPDATE_SUM] += update.sum()
            self.acc[RATIO_SUM] += (update / weight.clamp_min(1e-12)).sum()
        acc, dtype = self.acc, self.acc.dtype
        s = self.steps
        activity = self.probe.activity().to(self.device, dtype) if self.probe is not None else acc[:0]
        step_losses = self.step_losses.to(dtype) if self.enabled else acc[:0]
        spread = acc[:0]
        if distributed.active():
            # Each rank saw its own equal share of every batch: sums add up, per-step losses and
            # per-channel activity average over the ranks.
            world = torch.distributed.get_world_size()
            summed = distributed.all_reduce_sum_(torch.cat([acc[:PER_RANK], step_losses, activity]))
            acc = torch.cat([summed[:PER_RANK], acc[PER_RANK:]])
            step_losses = summed[PER_RANK:PER_RANK + step_losses.numel()] / world
            activity = summed[PER_RANK + step_losses.numel():] / world
            if self.enabled:
                # DDP averages the gradients, so every rank measured the same norms: max - min is 0
                # unless the ranks' models diverged (fairseq checks the same).
                hi, lo = distributed.max_and_min(torch.nansum(self.grad_norms.to(dtype)).reshape(1) / max(self.step, 1))
                spread = hi - lo
        parts = [acc]
        if self.enabled:
            parts += [self.grad_norms.to(dtype), step_losses, self.layer_sums.to(dtype)]
        host = torch.cat(parts + [activity, spread]).cpu().numpy().astype(np.float64)
        acc = host[:N_SLOTS]
        samples = acc[SAMPLES]
        finite_samples = acc[FINITE_SAMPLES]
        record = {
            # mean over the steps whose loss was finite; the others are counted in nonfinite_steps
            "loss": finite_or_none(acc[LOSS_SUM] / finite_samples) if finite_samples > 0 else None,
            "accuracy": float(acc[CORRECT] / max(samples, 1)),
            "num_batches": int(self.step),
            "num_samples": int(samples),
            "nonfinite_steps": int(acc[NONFINITE_LOSS]),
        }
        self.sample_arrays = self.samples.end_epoch() if self.enabled and self.samples is not None else None
        if not self.enabled:
            return record
        norms = host[N_SLOTS:N_SLOTS + s][: self.step]
        losses = host[N_SLOTS + s:N_SLOTS + 2 * s][: self.step]
        layer_end = N_SLOTS + 2 * s + len(self.layer_index)
        layer = host[N_SLOTS + 2 * s:layer_end]
        activity_host = host[layer_end:layer_end + activity.numel()]
        finite_norms = norms[np.isfinite(norms)]
        finite_losses = losses[np.isfinite(losses)]
        steps = max(self.step, 1)
        layer_means = layer / steps
        record.update({
            "mean_grad_norm": finite_or_none(finite_norms.mean()) if finite_norms.size else None,
            "min_grad_norm": finite_or_none(finite_norms.min()) if finite_norms.size else None,
            "max_grad_norm": finite_or_none(finite_norms.max()) if finite_norms.size else None,
            "grad_norm_std": finite_or_none(finite_norms.std()) if finite_norms.size else None,
            "nonfinite_grad_steps": int(acc[NONFINITE_GRAD]),
            "clipped_fraction": float(acc[CLIPPED] / steps) if self.grad_clip is not None else 0.0,
            "weight_update": finite_or_none(acc[UPDATE_SUM] / max(acc[UPDATES], 1)),
            "weight_update_ratio": finite_or_none(acc[RATIO_SUM] / max(acc[UPDATES], 1)),
            "loss_step_std": finite_or_none(finite_losses.std()) if finite_losses.size else None,
            "grad_norm_first_layer": finite_or_none(layer_means[0]) if layer_means.size else None,
            "grad_norm_last_layer": finite_or_none(layer_means[-1]) if layer_means.size else None,
            "layer_grad_norms": {n: finite_or_none(v) for n, v in zip(self.layer_names, layer_means)},
        })
        if spread.numel():
            record["grad_norm_rank_spread"] = finite_or_none(host[-1])
        if self.probe is not None:
            record.update(self.probe.summarize(activity_host))
        return record


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, criterion: nn.Module, autocast, num_classes: int,
             channels_last: bool = False, confusion: bool = True, predictions: Optional[ValPredictions] = None) -> dict:
    """Validation loss (training criterion), plain NLL, top-1 and top-5 accuracy, and (confusion=True)
    the C x C confusion matrix; one host read. predictions: given, it keeps each image's predicted
    probabilities on the device (val_predictions.py; read only when the loop writes them)."""
    model.eval()
    if predictions is not None:
        predictions.start()
    dtype = torch.float64 if device.type != "mps" else torch.float32
    acc = torch.zeros(5, device=device, dtype=dtype)
    k = min(5, num_classes)
    c = num_classes
    # Confusion counts, row = true class, column = predicted class, accumulated as the product of the two
    # one-hot matrices: torch.bincount and F.one_hot read their input's range on the host (a sync per
    # batch on CUDA); a comparison with arange does not. Labels lie in [0, C) (checked before training).
    classes = torch.arange(c, device=device)
    matrix = torch.zeros(c * c if confusion else 0, device=device, dtype=dtype)
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = model(x)
        logits = logits.float()
        n = y.shape[0]
        predicted = logits.argmax(dim=1)
        acc[0] += criterion(logits, y) * n
        acc[1] += nn.functional.cross_entropy(logits, y) * n
        acc[2] += (predicted == y).sum()
        acc[3] += (logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum()
        acc[4] += n
        if predictions is not None:
            predictions.record(logits, y)
        if confusion:
            truth = (y[:, None] == classes).to(torch.float32)
            guess = (predicted[:, None] == classes).to(torch.float32)
            matrix += (truth.T @ guess).reshape(-1)  # float32 counts are exact below 2**24 per batch
    # DDP: each rank validated its own share of the images (each image once, no padding): one all-reduce.
    host = distributed.all_reduce_sum_(torch.cat([acc, matrix])).tolist()
    loss_sum, nll_sum, correct, top5, n = host[:5]
    n = max(n, 1)
    record = {
        "loss": finite_or_none(loss_sum / n),
        "nll": finite_or_none(nll_sum / n),
        "accuracy": correct / n,
        "num_samples": int(n),
    }
    if num_classes > 5:
        record["top5_accuracy"] = top5 / n
    if confusion:
        counts = [int(v) for v in host[5:]]
        record["confusion_matrix"] = [counts[i * c:(i + 1) * c] for i in range(c)]
    return record
