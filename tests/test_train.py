"""reslib.train: configuration checks, the loop, schedules, safety nets and checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import reslib
from reslib.data import Split, TensorLoader, loaders, random_crop_flip, synthetic_images
from reslib.models.plain import DeepMLP
from reslib.train import History, StopTraining, TrainConfig, evaluate, fit, lr_factor

# --- TrainConfig -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=0), "epochs"),
        (dict(lr=0.0), "lr"),
        (dict(lr=-1e-3), "lr"),
        (dict(lr=math.nan), "lr"),
        (dict(optimizer="lbfgs"), r"optimizer 'lbfgs'.*sgd.*adam.*adamw"),
        (dict(schedule="linear"), r"schedule 'linear'.*constant.*cosine.*multistep"),
        (dict(milestones=(0.5, 1.0)), "milestones"),
        (dict(milestones=(0.0,)), "milestones"),
        (dict(milestones=(-0.2,)), "milestones"),
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(grad_clip=0.0), "grad_clip"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    cfg = TrainConfig()
    with pytest.raises(AttributeError):
        cfg.lr = 1.0  # type: ignore[misc]


# --- lr_factor ---------------------------------------------------------------------------------


def test_lr_factor_warmup_is_linear_then_constant() -> None:
    cfg = TrainConfig(warmup_steps=4)
    assert [lr_factor(s, 100, cfg) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_lr_factor_cosine() -> None:
    cfg = TrainConfig(schedule="cosine")
    assert lr_factor(0, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(25, 100, cfg) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert lr_factor(50, 100, cfg) == pytest.approx(0.5)
    assert lr_factor(100, 100, cfg) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(150, 100, cfg) == pytest.approx(0.0, abs=1e-12)  # clamped past the end


def test_lr_factor_multistep() -> None:
    cfg = TrainConfig(schedule="multistep", milestones=(0.5, 0.75))
    factors = [lr_factor(s, 100, cfg) for s in (0, 49, 50, 74, 75, 99)]
    assert factors == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def test_lr_factor_warmup_before_cosine() -> None:
    cfg = TrainConfig(schedule="cosine", warmup_steps=10)
    assert lr_factor(0, 100, cfg) == pytest.approx(0.1)
    assert lr_factor(9, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(60, 100, cfg) == pytest.approx((1 + math.cos(0.6 * math.pi)) / 2)


# --- a linear probe: the exact update of one weight -------------------------------------------


class Probe(nn.Module):
    """out = w * x with a single weight: with loss = out.sum() and SGD without momentum, each
    step moves w by exactly -lr_t * sum(x), so the schedule in fit() can be read off w."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x


def _sum_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.sum()


def _probe_run(cfg: TrainConfig, x_value: float, steps_per_epoch: int) -> list[float]:
    """w after each epoch."""
    x = torch.full((steps_per_epoch, 1), x_value)
    loader = TensorLoader(x, torch.zeros(steps_per_epoch, dtype=torch.long), batch_size=1)
    model, ws = Probe(), []
    fit(
        model,
        loader,
        cfg,
        loss_fn=_sum_loss,
        callbacks=[lambda h, m: ws.append(m.w.item())],
        progress=False,
    )
    return ws


def test_fit_follows_the_schedule_step_by_step() -> None:
    cfg = TrainConfig(
        epochs=3, lr=0.1, optimizer="sgd", momentum=0.0, schedule="cosine", warmup_steps=2
    )
    ws = _probe_run(cfg, x_value=1.0, steps_per_epoch=4)
    lrs = [0.1 * lr_factor(s, 12, cfg) for s in range(12)]
    expected = [-sum(lrs[: 4 * (e + 1)]) for e in range(3)]
    assert ws == pytest.approx(expected, rel=1e-5)


def test_grad_clip_bounds_each_update() -> None:
    base = dict(epochs=1, lr=0.01, optimizer="sgd", momentum=0.0)
    clipped = _probe_run(TrainConfig(**base, grad_clip=1.0), x_value=100.0, steps_per_epoch=3)
    free = _probe_run(TrainConfig(**base), x_value=100.0, steps_per_epoch=3)
    assert free[-1] == pytest.approx(-3 * 0.01 * 100)  # gradient 100 per step
    assert clipped[-1] == pytest.approx(-3 * 0.01 * 1.0)  # clipped to norm 1


# --- training a real model ---------------------------------------------------------------------


def _tiny_mlp(seed: int = 0, **kwargs: object) -> DeepMLP:
    reslib.seed_everything(seed)
    return DeepMLP(40, 10, width=32, depth=2, **kwargs)  # type: ignore[arg-type]


def _subset(split: Split, n: int, n_test: int = 64) -> Split:
    return Split(
        split.x_train[:n], split.y_train[:n], split.x_test[:n_test], split.y_test[:n_test], 10
    )


def test_fit_overfits_a_few_samples(mnist1d_split: Split) -> None:
    train, _ = loaders(_subset(mnist1d_split, 64), batch_size=16, seed=0)
    history = fit(_tiny_mlp(), train, TrainConfig(epochs=60, lr=3e-3), progress=False)
    assert len(history) == 60 and history.epoch == list(range(1, 61))
    assert history.train_loss[0] > 1.5  # about ln(10) = 2.3 at the start
    assert history.train_loss[-1] < 0.05
    assert history.train_metric[-1] == 1.0
    assert history.test_loss == [] and history.provenance.startswith("reslib")
    assert "train loss" in history.summary()


def test_fit_evaluates_the_test_loader(mnist1d_split: Split) -> None:
    train, test = loaders(_subset(mnist1d_split, 64), batch_size=16, seed=0)
    history = fit(_tiny_mlp(), train, TrainConfig(epochs=2), test_loader=test, progress=False)
    assert len(history.test_loss) == len(history.test_metric) == 2
    assert all(0.0 <= a <= 1.0 for a in history.test_metric)
    assert history.seconds == sorted(history.seconds)
    restored = History.from_dict(history.as_dict())
    assert restored == history


def _seeded_losses(mnist1d_split: Split, seed: int) -> list[float]:
    train, test = loaders(_subset(mnist1d_split, 96), batch_size=16, seed=seed)
    model = _tiny_mlp(seed, norm="batch")
    history = fit(model, train, TrainConfig(epochs=3), test_loader=test, progress=False)
    return history.train_loss + history.test_loss


def test_seeded_runs_are_identical(mnist1d_split: Split) -> None:
    first = _seeded_losses(mnist1d_split, seed=0)
    assert first == _seeded_losses(mnist1d_split, seed=0)
    assert first != _seeded_losses(mnist1d_split, seed=1)


def test_fit_rejects_an_empty_loader() -> None:
    with pytest.raises(ValueError, match="empty"):
        fit(_tiny_mlp(), [], TrainConfig(epochs=1), progress=False)


# --- NaN guard ---------------------------------------------------------------------------------


class NaNAfter(nn.Module):
    """Wraps a model and poisons its output from forward call number ``bad_call`` (0-based)."""

    def __init__(self, model: nn.Module, bad_call: int) -> None:
        super().__init__()
        self.model, self.bad_call, self.calls = model, bad_call, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        self.calls += 1
        return out * math.nan if self.calls > self.bad_call else out


def test_nan_guard_names_epoch_and_step(tmp_path: Path) -> None:
    x, y = torch.randn(16, 40), torch.randint(10, (16,))
    loader = TensorLoader(x, y, batch_size=4)  # 4 steps per epoch
    model = NaNAfter(_tiny_mlp(), bad_call=5)  # epoch 2, its second step (1-based)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(FloatingPointError, match=r"epoch 2, step 2 of \d+") as info:
        fit(model, loader, TrainConfig(epochs=3), checkpoint=ckpt, progress=False)
    assert str(ckpt) in str(info.value)  # points to the last good checkpoint
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1  # the bad epoch was not saved


def test_nan_guard_catches_a_diverging_learning_rate() -> None:
    x, y = torch.randn(32, 40), torch.randint(10, (32,))
    loader = TensorLoader(x, y, batch_size=8)
    cfg = TrainConfig(epochs=3, lr=1e8, optimizer="sgd")
    with pytest.raises(FloatingPointError, match=r"NaN or infinite at epoch \d+, step \d+"):
        fit(_tiny_mlp(), loader, cfg, progress=False)


# --- callbacks and evaluate --------------------------------------------------------------------


def test_stop_training_from_a_callback_ends_early() -> None:
    loader = TensorLoader(torch.randn(16, 40), torch.randint(10, (16,)), batch_size=8)
    seen: list[int] = []

    def stop_after_two(history: History, model: nn.Module) -> None:
        seen.append(history.epoch[-1])
        if len(history) == 2:
            raise StopTraining

    history = fit(
        _tiny_mlp(), loader, TrainConfig(epochs=10), callbacks=[stop_after_two], progress=False
    )
    assert history.epoch == [1, 2] and seen == [1, 2]


class ModeSpy(nn.Module):
    """Records the mode it ran in at each forward."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return self.linear(x)


@pytest.mark.parametrize("start_in_train_mode", [True, False])
def test_evaluate_runs_in_eval_mode_and_restores_the_mode(start_in_train_mode: bool) -> None:
    model = ModeSpy().train(start_in_train_mode)
    loader = TensorLoader(torch.randn(6, 2), torch.randint(2, (6,)), batch_size=4)
    evaluate(model, loader)
    assert model.modes == [False, False]
    assert model.training == start_in_train_mode


def test_evaluate_loss_and_accuracy() -> None:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # logits = inputs
    x = torch.tensor([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    y = torch.tensor([0, 1, 1, 1, 0])  # the third sample is predicted wrong
    loss, acc = evaluate(model, TensorLoader(x, y, batch_size=2))
    assert acc == pytest.approx(0.8)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(x, y).item(), rel=1e-6)
    _, acc = evaluate(model, TensorLoader(x, y.float(), batch_size=2), loss_fn=_sum_loss)
    assert math.isnan(acc)  # no accuracy for float targets
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, [])


# --- checkpoints -------------------------------------------------------------------------------


class Interrupt(Exception):
    """Stands in for a Colab disconnect after an epoch."""


def _ckpt_setup(mnist1d_split: Split) -> tuple[DeepMLP, TensorLoader, TensorLoader]:
    train, test = loaders(_subset(mnist1d_split, 96), batch_size=16, seed=0)
    return _tiny_mlp(norm="batch"), train, test


def test_resume_after_two_epochs_equals_an_uninterrupted_run(
    mnist1d_split: Split, tmp_path: Path
) -> None:
    cfg = TrainConfig(epochs=4, optimizer="sgd", lr=0.05)  # momentum buffers must be restored
    model, train, test = _ckpt_setup(mnist1d_split)
    full = fit(model, train, cfg, test_loader=test, progress=False)

    ckpt = tmp_path / "run.pt"
    model, train, test = _ckpt_setup(mnist1d_split)
    first = fit(
        model,
        train,
        TrainConfig(epochs=2, optimizer="sgd", lr=0.05),
        test_loader=test,
        checkpoint=ckpt,
        progress=False,
    )
    assert first.epoch == [1, 2]

    # a fresh process: new model, new loader (its shuffling RNG starts from the seed again)
    model, train, test = _ckpt_setup(mnist1d_split)
    torch.manual_seed(999)  # the global RNG state comes from the checkpoint, not from here
    seen: list[int] = []
    resumed = fit(
        model,
        train,
        cfg,
        test_loader=test,
        checkpoint=ckpt,
        resume_changes=("epochs",),  # deliberately trained further: 2 -> 4 epochs
        progress=False,
        callbacks=[lambda h, m: seen.append(h.epoch[-1])],
    )
    assert seen == [3, 4]  # epochs 1 and 2 were not trained again
    assert resumed.epoch == [1, 2, 3, 4]
    assert resumed.train_loss == full.train_loss  # exactly: optimizer, BN, loader RNG restored
    assert resumed.test_loss == full.test_loss
    assert resumed.train_metric == full.train_metric and resumed.lr == full.lr
    final = torch.load(ckpt, weights_only=True)
    assert final["epoch"] == 4
    for key, value in model.state_dict().items():
        assert torch.equal(final["model"][key], value)


def test_resume_mid_schedule_after_an_interruption(mnist1d_split: Split, tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=4, lr=3e-3, schedule="cosine", warmup_steps=3)
    model, train, test = _ckpt_setup(mnist1d_split)
    full = fit(model, train, cfg, test_loader=test, progress=False)

    def disconnect_after_two(history: History, model: nn.Module) -> None:
        if len(history) == 2:
            raise Interrupt

    ckpt = tmp_path / "run.pt"
    model, train, test = _ckpt_setup(mnist1d_split)
    with pytest.raises(Interrupt):
        fit(
            model,
            train,
            cfg,
            test_loader=test,
            checkpoint=ckpt,
            callbacks=[disconnect_after_two],
            progress=False,
        )
    model, train, test = _ckpt_setup(mnist1d_split)
    resumed = fit(model, train, cfg, test_loader=test, checkpoint=ckpt, progress=False)
    assert resumed.train_loss == full.train_loss
    assert resumed.test_loss == full.test_loss
    assert resumed.lr == full.lr


def test_a_finished_checkpoint_trains_no_further(mnist1d_split: Split, tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    model, train, _ = _ckpt_setup(mnist1d_split)
    done = fit(model, train, TrainConfig(epochs=2), checkpoint=ckpt, progress=False)
    model, train, _ = _ckpt_setup(mnist1d_split)
    again = fit(model, train, TrainConfig(epochs=2), checkpoint=ckpt, progress=False)
    assert again.train_loss == done.train_loss
    w = torch.load(ckpt, weights_only=True)["model"]["head.weight"]
    assert torch.equal(model.head.weight, w)  # the weights were loaded, nothing trained after


def test_checkpoint_of_another_model_is_rejected(mnist1d_split: Split, tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    model, train, _ = _ckpt_setup(mnist1d_split)
    fit(model, train, TrainConfig(epochs=1), checkpoint=ckpt, progress=False)
    wider = DeepMLP(40, 10, width=48, depth=2, norm="batch")
    with pytest.raises(ValueError, match=r"does not match this model.*delete it"):
        fit(wider, train, TrainConfig(epochs=2), checkpoint=ckpt, progress=False)


def test_garbage_checkpoint_is_rejected(tmp_path: Path) -> None:
    loader = TensorLoader(torch.randn(8, 40), torch.randint(10, (8,)), batch_size=4)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="not a readable reslib checkpoint"):
        fit(_tiny_mlp(), loader, TrainConfig(epochs=1), checkpoint=garbage, progress=False)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a reslib checkpoint"):
        fit(_tiny_mlp(), loader, TrainConfig(epochs=1), checkpoint=other, progress=False)


# --- GPU ---------------------------------------------------------------------------------------


class TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 16 * 16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_fit_on_cuda_with_amp_and_channels_last(precision: str) -> None:
    if precision == "bf16" and torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("this GPU has no bf16 tensor cores")
    device = torch.device("cuda")
    split = synthetic_images(512, 128, shape=(3, 16, 16), seed=0)
    train, test = loaders(split, batch_size=64, device=device)
    reslib.seed_everything(0)
    model = TinyConvNet().to(device)
    dtypes: list[torch.dtype] = []
    model.features[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    config = TrainConfig(epochs=4, lr=1e-3, precision=precision, compile=False)  # type: ignore[arg-type]
    history = fit(model, train, config, test_loader=test, progress=False)
    expected = torch.bfloat16 if precision == "bf16" else torch.float16
    assert set(dtypes) == {expected}
    assert history.setup == f"{precision} · eager"
    assert all(math.isfinite(v) for v in history.train_loss)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]  # on the CPU: 1.08 -> 0.003
    assert history.test_metric[-1] > 0.5  # 10 classes: chance is 0.1
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not model.features[0].weight.is_contiguous()


@pytest.mark.gpu
def test_random_crop_flip_on_cuda() -> None:
    x = torch.randn(8, 3, 8, 8, device="cuda").contiguous(memory_format=torch.channels_last)
    a = random_crop_flip(x, generator=torch.Generator("cuda").manual_seed(0))
    b = random_crop_flip(x, generator=torch.Generator("cuda").manual_seed(0))
    assert a.device == x.device and a.shape == x.shape and torch.equal(a, b)
    assert a.is_contiguous(memory_format=torch.channels_last)
    same = random_crop_flip(x, padding=0, generator=torch.Generator("cuda").manual_seed(0))
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(2)) for o, i in zip(same, x, strict=True))


# --- issue 10: validation at the door, loaders, messages ---------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=2.5), r"epochs must be an int >= 1, got 2\.5"),
        (dict(epochs=True), r"epochs must be an int >= 1, got True"),
        (dict(lr=math.inf), r"lr must be a finite number > 0, got inf"),
        (dict(momentum=-0.1), r"momentum must be a finite number >= 0"),
        (dict(momentum=math.nan), r"momentum must be a finite number >= 0, got nan"),
        (dict(weight_decay=-1e-4), r"weight_decay must be a finite number >= 0"),
        (dict(weight_decay=math.nan), r"weight_decay must be a finite number >= 0, got nan"),
        (dict(warmup_steps=1.5), r"warmup_steps must be an int >= 0"),
        (dict(grad_clip=math.inf), r"grad_clip must be a finite number > 0"),
        (dict(compile="fastest"), r"compile mode 'fastest'.*reduce-overhead.*max-autotune"),
        (dict(precision="half"), r"unknown precision .half.: expected .auto. or one of"),
        (dict(sync_batchnorm="yes"), r"sync_batchnorm must be True or False"),
    ],
)
def test_config_rejects_values_that_used_to_pass(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", [False, True, *reslib.train.COMPILE_MODES])
def test_config_accepts_every_compile_mode(mode: bool | str) -> None:
    assert TrainConfig(compile=mode).compile == mode


def test_config_stores_milestones_as_a_tuple() -> None:
    cfg = TrainConfig(schedule="multistep", milestones=[0.5, 0.75])  # type: ignore[arg-type]
    assert cfg.milestones == (0.5, 0.75) and hash(cfg)


class _NoLen:
    """A re-iterable loader without ``__len__`` (an IterableDataset-style stream)."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches = batches

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.batches)


def _batches(n: int, size: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(size, 40, generator=g), torch.randint(10, (size,), generator=g))] * n


def test_a_loader_without_len_needs_steps_per_epoch() -> None:
    loader = _NoLen(_batches(3))
    with pytest.raises(ValueError, match=r"has no len\(\).*steps_per_epoch"):
        fit(_tiny_mlp(), loader, TrainConfig(epochs=2, schedule="cosine"), progress=False)


def test_steps_per_epoch_sizes_the_schedule_of_a_loader_without_len() -> None:
    x = torch.ones(4, 1)
    loader = _NoLen([(x[i : i + 1], torch.zeros(1, dtype=torch.long)) for i in range(4)])
    cfg = TrainConfig(epochs=2, lr=0.1, optimizer="sgd", momentum=0.0, schedule="cosine")
    model, ws = Probe(), []
    history = fit(
        model,
        loader,
        cfg,
        loss_fn=_sum_loss,
        steps_per_epoch=4,
        callbacks=[lambda h, m: ws.append(m.w.item())],
        progress=False,
    )
    lrs = [0.1 * lr_factor(s, 8, cfg) for s in range(8)]
    assert ws == pytest.approx([-sum(lrs[:4]), -sum(lrs)], rel=1e-5)
    assert history.lr == pytest.approx([lrs[3], lrs[7]])  # not 0.0 from the second step


def test_a_one_shot_generator_is_refused_for_several_epochs() -> None:
    batches = (b for b in _batches(3))
    with pytest.raises(ValueError, match=r"one-shot iterator \(generator\).*other 2"):
        fit(_tiny_mlp(), batches, TrainConfig(epochs=3), steps_per_epoch=3, progress=False)


def test_a_stream_that_runs_dry_after_one_epoch_is_an_error() -> None:
    class OneShot:  # re-iterable in name, but yields its batches only once
        def __init__(self) -> None:
            self.it = iter(_batches(3))

        def __iter__(self):  # type: ignore[no-untyped-def]
            return self.it

    with pytest.raises(ValueError, match=r"no batches in epoch 2: a one-shot iterator"):
        fit(_tiny_mlp(), OneShot(), TrainConfig(epochs=2), steps_per_epoch=3, progress=False)


def test_an_empty_loader_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"train_loader is empty \(len 0\)"):
        fit(_tiny_mlp(), [], TrainConfig(epochs=1), progress=False)


def test_an_empty_stream_with_steps_per_epoch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no batches in epoch 1: it is empty"):
        fit(_tiny_mlp(), _NoLen([]), TrainConfig(epochs=1), steps_per_epoch=2, progress=False)


def test_a_loader_shorter_than_its_len_is_an_error() -> None:
    class Liar(_NoLen):
        def __len__(self) -> int:
            return 5

    with pytest.raises(ValueError, match=r"yielded 3 batches in epoch 1.*sized for 5"):
        fit(_tiny_mlp(), Liar(_batches(3)), TrainConfig(epochs=1), progress=False)


def test_an_empty_test_loader_is_named() -> None:
    with pytest.raises(ValueError, match=r"evaluate\(\) got a loader that yielded no batches"):
        fit(_tiny_mlp(), _batches(2), TrainConfig(epochs=1), test_loader=[], progress=False)


def test_nan_in_the_first_epoch_names_no_checkpoint(tmp_path: Path) -> None:
    loader = TensorLoader(torch.randn(16, 40), torch.randint(10, (16,)), batch_size=4)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 3 of 4") as info:
        fit(
            NaNAfter(_tiny_mlp(), 2), loader, TrainConfig(epochs=2), checkpoint=ckpt, progress=False
        )
    assert "checkpoint" not in str(info.value) and not ckpt.exists()


def test_fit_accepts_a_metric_and_history_names_it() -> None:
    x, y = torch.randn(8, 3, 4, 4), torch.randint(3, (8, 4, 4))
    model = nn.Conv2d(3, 3, 1)  # per-pixel logits (B, C, H, W)
    loader = TensorLoader(x, y, batch_size=4)
    metric = reslib.train.MeanIoU(3)
    history = fit(
        model, loader, TrainConfig(epochs=2), test_loader=loader, metric=metric, progress=False
    )
    assert history.metric == "mean IoU" and len(history.train_metric) == 2
    assert history.test_metric[-1] == evaluate(model, loader, metric=metric)[1]
    assert "test mean IoU" in history.summary()
