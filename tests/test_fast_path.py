"""The GPU fast path's decisions, tested on the CPU: the precision policy (with mocked device
properties), the compile mode, CUDA-graph routing by shape and the fallback to eager."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import reslib
from reslib.data import TensorLoader, synthetic_images
from reslib.train import TrainConfig, fit
from reslib.train.precision import (
    autocast,
    choose_precision,
    make_scaler,
    matmul_precision,
    resolve_precision,
)
from reslib.train.runtime import FUSION_MIN_STEPS, compile_mode

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")


def _gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], name: str) -> None:
    """Pretend the machine has one GPU of this compute capability."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    # a T4 *reports* bf16 support (it emulates it): the policy must not ask
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.mark.parametrize(
    ("capability", "name", "expected"),
    [
        ((6, 0), "Tesla P100", "fp32"),  # no tensor cores
        ((7, 0), "Tesla V100", "fp16"),
        ((7, 5), "Tesla T4", "fp16"),  # reports bf16, emulates it: never bf16
        ((8, 0), "A100", "bf16"),
        ((8, 9), "L4", "bf16"),
        ((9, 0), "H100", "bf16"),
        ((12, 0), "a future GPU", "bf16"),
    ],
)
def test_precision_policy_per_gpu_generation(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], name: str, expected: str
) -> None:
    _gpu(monkeypatch, capability, name)
    assert choose_precision(CUDA) == expected
    assert resolve_precision("auto", CUDA) == expected


def test_the_cpu_trains_in_fp32_whatever_is_asked() -> None:
    assert choose_precision(CPU) == "fp32"
    for asked in ("auto", "fp32", "tf32", "bf16", "fp16"):
        assert resolve_precision(asked, CPU) == "fp32"
    assert not make_scaler("fp16", CPU).is_enabled()
    with autocast(CPU, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_bf16_on_a_gpu_that_emulates_it_is_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _gpu(monkeypatch, (7, 5), "Tesla T4")
    with pytest.raises(ValueError, match=r"Tesla T4 .*compute capability < 8.0.*'auto'"):
        resolve_precision("bf16", CUDA)
    assert resolve_precision("fp16", CUDA) == "fp16"


def test_tf32_settings_are_set_on_cuda_only_and_restored() -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with matmul_precision(CUDA, "tf32"):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with matmul_precision(CUDA, "fp32"):
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with matmul_precision(CPU, "tf32"):  # the CPU has no TF32: nothing changes
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@pytest.mark.parametrize(
    ("setting", "device", "distributed", "expected"),
    [
        ("auto", CUDA, False, "cudagraphs"),  # CUDA graphs by default on one GPU (short run)
        ("auto", CPU, False, None),  # the CPU path is unchanged: eager
        ("auto", CUDA, True, None),  # DDP: eager
        (False, CUDA, False, None),
        (True, CPU, False, "default"),
        ("cudagraphs", CUDA, False, "cudagraphs"),
        ("max-autotune", CUDA, False, "max-autotune"),
    ],
)
def test_compile_mode(
    setting: bool | str, device: torch.device, distributed: bool, expected: str | None
) -> None:
    assert compile_mode(TrainConfig(compile=setting), device, distributed) == expected


def test_auto_fuses_with_inductor_only_for_runs_that_repay_the_compile_time() -> None:
    auto = TrainConfig()
    assert compile_mode(auto, CUDA, False, planned_steps=FUSION_MIN_STEPS - 1) == "cudagraphs"
    assert compile_mode(auto, CUDA, False, planned_steps=FUSION_MIN_STEPS) == "reduce-overhead"
    assert compile_mode(auto, CUDA, False, planned_steps=64_000) == "reduce-overhead"  # He et al.
    assert compile_mode(auto, CPU, False, planned_steps=64_000) is None
    assert compile_mode(auto, CUDA, True, planned_steps=64_000) is None


# --- the step: graphs for the steady shape, eager for the rest, eager when compiling fails ----


def _loader(n: int = 100, batch_size: int = 32) -> TensorLoader:
    split = synthetic_images(n, 8, shape=(1, 4, 4), seed=0)
    return TensorLoader(split.x_train, split.y_train, batch_size=batch_size, shuffle=True)


def _net() -> nn.Module:
    reslib.seed_everything(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 10))


class Recorder(nn.Module):
    """Stands in for torch.compile's module: runs the model, records the batch sizes."""

    def __init__(self, model: nn.Module, fail: bool = False) -> None:
        super().__init__()
        self.model, self.fail, self.sizes = model, fail, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail:
            raise RuntimeError("inductor: no C compiler found")
        self.sizes.append(x.shape[0])
        return self.model(x)


def _fake_compile(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[Recorder]:
    made: list[Recorder] = []

    def compile_(model: nn.Module, **kwargs: object) -> Recorder:
        made.append(Recorder(model, fail))
        return made[-1]

    monkeypatch.setattr(torch, "compile", compile_)
    return made


def test_only_batches_of_the_first_shape_take_the_compiled_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _fake_compile(monkeypatch)
    loader = _loader(100, 32)  # three batches of 32, then one of 4
    history = fit(_net(), loader, TrainConfig(epochs=2, compile=True), progress=False)
    assert made[0].sizes == [32] * 6  # the short batches ran eagerly
    assert history.setup == "fp32 · torch.compile(default)"
    assert history.compile_seconds > 0 and len(history.seconds) == 2


def test_a_failed_compile_falls_back_to_eager_with_a_warning_and_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eager_model = _net()
    eager = fit(eager_model, _loader(), TrainConfig(epochs=2, compile=False), progress=False)
    _fake_compile(monkeypatch, fail=True)
    model = _net()
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no C compiler.*eagerly"):
        history = fit(model, _loader(), TrainConfig(epochs=2, compile=True), progress=False)
    assert history.setup.startswith("fp32 · eager (compile failed: RuntimeError")
    assert history.train_loss == eager.train_loss  # the failed attempt changed nothing
    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_real_error_in_the_model_is_raised_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_compile(monkeypatch)
    bad = nn.Sequential(nn.Flatten(), nn.Linear(15, 10))  # expects 15 features, gets 16
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # and no "compile failed" warning first
        with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
            fit(bad, _loader(), TrainConfig(epochs=1, compile=True), progress=False)


def test_the_cpu_default_is_eager_fp32_and_history_says_so() -> None:
    history = fit(_net(), _loader(), TrainConfig(epochs=1), progress=False)
    assert history.setup == "fp32 · eager" and history.compile_seconds == 0.0
    assert "compiling" not in history.summary() and "fp32 · eager" in history.summary()
    assert math.isfinite(history.train_loss[0])


def test_history_from_an_older_checkpoint_without_the_new_fields_loads() -> None:
    old: dict[str, object] = dict(
        epoch=[1], train_loss=[1.0], train_metric=[0.5], test_loss=[], test_metric=[],
        lr=[0.1], seconds=[2.0], metric="accuracy", provenance="",
    )  # fmt: skip
    h = reslib.History.from_dict(old)
    assert h.compile_seconds == 0.0 and h.setup == "" and h.seconds == [2.0]


# --- on a GPU ---------------------------------------------------------------------------------


def _conv_net() -> nn.Module:
    reslib.seed_everything(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


def _cuda_run(config: TrainConfig) -> tuple[reslib.History, nn.Module]:
    split = synthetic_images(520, 128, shape=(3, 16, 16), seed=0)  # 8 batches of 64, then 8
    train, test = reslib.data.loaders(split, batch_size=64, device="cuda")
    model = _conv_net().cuda()
    return fit(model, train, config, test_loader=test, progress=False), model


@pytest.mark.gpu
def test_the_default_on_cuda_replays_cuda_graphs_and_trains_as_eager_does() -> None:
    graphed, model = _cuda_run(TrainConfig(epochs=4, lr=3e-3))
    eager, _ = _cuda_run(TrainConfig(epochs=4, lr=3e-3, compile=False))
    expected = choose_precision(torch.device("cuda"))
    assert graphed.setup == f"{expected} · CUDA graphs (cudagraphs)", graphed.setup
    assert eager.setup == f"{expected} · eager"
    assert graphed.compile_seconds > 0 and eager.compile_seconds == 0
    assert graphed.train_loss[-1] < 0.5 * graphed.train_loss[0]
    assert graphed.test_metric[-1] > 0.5
    # the same kernels, replayed, on the same batches from the same weights: the same training
    # up to rounding, which 32 steps in low precision may grow by a few per cent
    assert graphed.train_loss[0] == pytest.approx(eager.train_loss[0], rel=0.02)
    for a, b in zip(graphed.train_loss, eager.train_loss, strict=True):
        assert a == pytest.approx(b, rel=0.05)


@pytest.mark.gpu
def test_the_policy_on_this_gpu_never_picks_emulated_bf16() -> None:
    device = torch.device("cuda")
    chosen = choose_precision(device)
    major = torch.cuda.get_device_capability(device)[0]
    assert chosen == ("bf16" if major >= 8 else "fp16" if major == 7 else "fp32")
