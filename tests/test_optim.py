"""The optimizers as the loop uses them: fused kernels (CUDA's; torch has CPU versions of the same
Python path) next to GradScaler, and checkpoints restored across devices."""

from __future__ import annotations

import math

import torch

from conftest import compose
from trainer.config import RegularizationConf, validate
from trainer.optim import build_optimizer, load_optimizer_state


def sgd_conf():
    return validate(compose(["optimizer=sgd", "optimizer.momentum=0.9", "optimizer.nesterov=true"])).optimizer


def weights():
    return torch.nn.Parameter(torch.linspace(-1, 1, 24).reshape(2, 3, 2, 2))


def test_fused_sgd_after_a_skipped_first_step_updates_exactly_as_plain_sgd():
    """GradScaler skips a step whose gradients overflowed; on the very first step fused SGD used to
    keep momentum buffers the kernel never wrote (empty_like memory) and multiply them in next time."""
    runs = {}
    for fused in (False, True):
        w = weights()
        opt = build_optimizer(sgd_conf(), RegularizationConf(weight_decay=5e-4), [w], fused=fused)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
        for step in range(3):
            opt.zero_grad(set_to_none=True)
            scaler.scale((w * w).sum()).backward()
            if step == 0:
                w.grad.fill_(math.inf)  # the overflow of an fp16 first step
            scaler.step(opt)
            scaler.update()
        runs[fused] = w.detach().clone()
    assert torch.isfinite(runs[True]).all()
    assert torch.allclose(runs[True], runs[False], rtol=1e-6, atol=1e-7)
    assert not torch.equal(runs[False], weights().detach())  # the two later steps did move the weights


def test_a_plain_checkpoint_resumes_into_the_fused_channels_last_optimizer():
    """A checkpoint from a CPU run (no fused kernel, contiguous buffers) resumed on CUDA (fused,
    channels-last weights) keeps this run's kernel and lays the buffers out like the weights."""
    w = weights()
    saved_opt = build_optimizer(sgd_conf(), RegularizationConf(weight_decay=0.0), [w])
    (w * w).sum().backward()
    saved_opt.step()
    saved = saved_opt.state_dict()
    assert saved["param_groups"][0]["fused"] is None

    w2 = torch.nn.Parameter(w.detach().clone().contiguous(memory_format=torch.channels_last))
    opt = build_optimizer(sgd_conf(), RegularizationConf(weight_decay=0.0), [w2], fused=True)
    load_optimizer_state(opt, saved)
    assert opt.param_groups[0]["fused"] is True
    buf = opt.state[w2]["momentum_buffer"]
    assert buf.stride() == w2.stride() and torch.equal(buf, saved["state"][0]["momentum_buffer"])
    # And the next step equals the one the saving optimizer takes from the same state.
    for p, o in ((w, saved_opt), (w2, opt)):
        o.zero_grad(set_to_none=True)
        (p * p).sum().backward()
        o.step()
    assert torch.allclose(w2, w, rtol=1e-6, atol=1e-7)
