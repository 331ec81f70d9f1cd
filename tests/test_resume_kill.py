"""Kill a training process with SIGKILL at several points; resuming must end bitwise-equal.

A child process trains a small DeepMLP (batch norm, SGD with momentum, warm-up and cosine, a
noise augmentation drawing on torch's global RNG, a shuffling loader) with a checkpoint. It is
killed three times, each at a pause it announces: right after the checkpoint of epoch 2, in the
middle of epoch 6 (steps of that epoch already applied in memory but not saved) and after the
checkpoint of epoch 8. Each restart resumes from the file. The final parameters and History
must equal an uninterrupted run's exactly (wall-clock seconds and provenance aside).

The children are forked from the test process, which has torch and reslib imported already:
a fresh interpreter would spend about 4 s per start on imports alone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from reslib.data import Split, loaders
from reslib.models.plain import DeepMLP
from reslib.profiles import seed_everything
from reslib.train import History, TrainConfig, fit

STEPS_PER_EPOCH = 4
FORK = multiprocessing.get_context("fork") if sys.platform != "win32" else None


def _train(ckpt: Path, out: Path, pause: str, paused: Any) -> None:
    """The child: train with a checkpoint; at ``pause`` set ``paused`` and wait to be killed."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 40, generator=g), torch.randint(10, (96,), generator=g)
    split = Split(x[:64], y[:64], x[64:], y[64:], num_classes=10)

    def noise(xb: torch.Tensor) -> torch.Tensor:
        return xb + 0.1 * torch.randn_like(xb)  # draws on the global RNG

    train, test = loaders(split, batch_size=16, augment=noise, seed=0)
    seed_everything(0)
    model = DeepMLP(40, 10, width=32, depth=3, norm="batch")
    cfg = TrainConfig(epochs=10, optimizer="sgd", lr=0.05, schedule="cosine", warmup_steps=3)
    # count training steps over the whole run, not this process: resume at the saved epoch
    done = torch.load(ckpt, weights_only=True)["epoch"] if ckpt.exists() else 0
    steps = [STEPS_PER_EPOCH * done]

    def wait_to_be_killed() -> None:
        paused.set()
        time.sleep(60)

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # a training step, not evaluation
            steps[0] += 1
            if pause == f"step{steps[0]}":
                wait_to_be_killed()
        return F.cross_entropy(out, y)

    def after_epoch(history: History, model: torch.nn.Module) -> None:
        if pause == f"epoch{history.epoch[-1]}":
            wait_to_be_killed()

    history = fit(
        model,
        train,
        cfg,
        test_loader=test,
        loss_fn=loss_fn,
        checkpoint=ckpt,
        callbacks=[after_epoch],
        progress=False,
    )
    torch.save({"model": model.state_dict(), "history": history.as_dict()}, out)


def _start(ckpt: Path, out: Path, pause: str = "") -> tuple[Any, Any]:
    assert FORK is not None
    paused = FORK.Event()
    proc = FORK.Process(target=_train, args=(ckpt, out, pause, paused))
    proc.start()
    return proc, paused


@pytest.mark.skipif(FORK is None, reason="needs fork and POSIX signals")
def test_sigkill_at_several_points_then_resume_is_bitwise_equal(tmp_path: Path) -> None:
    reference, _ = _start(tmp_path / "reference.pt", tmp_path / "reference_out.pt")
    ckpt, out = tmp_path / "run.pt", tmp_path / "run_out.pt"
    # (where the child pauses to be killed, epochs its checkpoint holds then)
    for pause, saved_epochs in (("epoch2", 2), ("step22", 5), ("epoch8", 8)):
        proc, paused = _start(ckpt, out, pause)
        assert paused.wait(timeout=60), "the child never reached its pause"
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=60)
        assert proc.exitcode == -signal.SIGKILL
        assert not out.exists()
        assert torch.load(ckpt, weights_only=True)["epoch"] == saved_epochs
    final, _ = _start(ckpt, out)
    final.join(timeout=120)
    reference.join(timeout=120)
    assert final.exitcode == 0 and reference.exitcode == 0

    got = torch.load(out, weights_only=True)
    want = torch.load(tmp_path / "reference_out.pt", weights_only=True)
    assert got["model"].keys() == want["model"].keys()
    for key, value in want["model"].items():
        assert torch.equal(got["model"][key], value), key
    for name in ("seconds", "provenance"):  # wall-clock facts of each process
        del got["history"][name], want["history"][name]
    assert got["history"] == want["history"]
    assert got["history"]["epoch"] == list(range(1, 11))
