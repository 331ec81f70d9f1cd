"""Checkpoints tied to their run and checked for damage (issue 10, defects 1, 2, 6 and 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import reslib
from reslib.data import TensorLoader
from reslib.models.plain import DeepMLP
from reslib.train import Accuracy, MeanIoU, TrainConfig, fit
from reslib.train.checkpoint import fingerprint


def _mlp(seed: int = 0, **kwargs: object) -> DeepMLP:
    reslib.seed_everything(seed)
    options: dict[str, object] = dict(width=16, depth=2) | kwargs
    return DeepMLP(40, 10, **options)  # type: ignore[arg-type]


def _data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 40, generator=g), torch.randint(10, (n,), generator=g)


def _loader() -> TensorLoader:
    return TensorLoader(*_data(), batch_size=8, shuffle=True, seed=0)


def _run(path: Path, model: DeepMLP | None = None, cfg: TrainConfig | None = None, **kw: object):  # type: ignore[no-untyped-def]
    cfg = cfg or TrainConfig(epochs=2)
    return fit(model or _mlp(), _loader(), cfg, checkpoint=path, progress=False, **kw)  # type: ignore[arg-type]


# --- defect 1: identity ------------------------------------------------------------------------


def test_plain_and_residual_twins_have_different_fingerprints() -> None:
    plain = DeepMLP(40, 10, depth=4, skip="none")
    residual = DeepMLP(40, 10, depth=4, skip="identity")
    assert plain.state_dict().keys() == residual.state_dict().keys()  # keys cannot tell
    assert fingerprint(plain)["sha256"] != fingerprint(residual)["sha256"]
    assert fingerprint(plain)["sha256"] == fingerprint(DeepMLP(40, 10, depth=4))["sha256"]


def test_resuming_the_residual_twin_from_the_plain_run_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    _run(ckpt, _mlp(skip="none"))
    with pytest.raises(ValueError, match=r"another architecture.*shortcut\): Zero.*Identity"):
        _run(ckpt, _mlp(skip="identity"))


def test_another_architecture_lists_missing_unexpected_and_shapes(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    _run(ckpt, _mlp(depth=2))
    with pytest.raises(ValueError, match=r"missing from the checkpoint: blocks\.2\.") as info:
        _run(ckpt, _mlp(depth=3, width=24))
    assert "shape mismatches (checkpoint vs model): stem.0.weight [16, 40] vs [24, 40]" in str(
        info.value
    )
    with pytest.raises(ValueError, match=r"unexpected in the checkpoint: blocks\.1\."):
        _run(ckpt, _mlp(depth=1))


@pytest.mark.parametrize(
    ("changed", "listed"),
    [
        (dict(lr=1e-2), r"lr: 0\.001 in the checkpoint, 0\.01 now"),
        (dict(schedule="cosine"), r"schedule: 'constant' in the checkpoint, 'cosine' now"),
        (dict(optimizer="sgd"), r"optimizer: 'adam' in the checkpoint, 'sgd' now"),
        (dict(epochs=3, lr=1e-2), r"epochs: 2 .*, 3 now; lr: .*resume_changes=\('epochs', 'lr'\)"),
    ],
)
def test_a_changed_config_is_refused_with_the_fields_listed(
    tmp_path: Path, changed: dict[str, object], listed: str
) -> None:
    ckpt = tmp_path / "run.pt"
    _run(ckpt)
    with pytest.raises(ValueError, match=listed):  # adam -> sgd: not KeyError: 'momentum'
        _run(ckpt, cfg=TrainConfig(**{"epochs": 2, **changed}))  # type: ignore[arg-type]


def test_a_changed_metric_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    _run(ckpt, metric=Accuracy())
    with pytest.raises(ValueError, match=r"metric: 'accuracy' in the checkpoint, 'mean IoU' now"):
        _run(ckpt, metric=MeanIoU(10))


def test_deliberate_changes_are_accepted_when_named(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    _run(ckpt)
    cfg = TrainConfig(epochs=3, optimizer="sgd", lr=0.05, momentum=0.5)
    seen: list[int] = []
    history = _run(
        ckpt,
        cfg=cfg,
        resume_changes=("epochs", "optimizer", "lr", "momentum"),
        callbacks=[lambda h, m: seen.append(h.epoch[-1])],
    )
    assert seen == [3] and history.epoch == [1, 2, 3]
    assert history.lr[-1] == 0.05  # the new rate applies at once
    with pytest.raises(ValueError, match=r"resume_changes: unknown names \['learning_rate'\]"):
        _run(ckpt, cfg=cfg, resume_changes=("learning_rate",))


def test_a_finished_run_can_be_trained_further(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    straight = fit(_mlp(), _loader(), TrainConfig(epochs=3), progress=False)
    _run(ckpt)
    longer = _run(ckpt, cfg=TrainConfig(epochs=3), resume_changes=("epochs",))
    assert longer.train_loss == straight.train_loss  # constant schedule: same as one run


# --- defect 2: DataLoader ----------------------------------------------------------------------


def _dataloader(generator: torch.Generator | None) -> DataLoader:
    return DataLoader(TensorDataset(*_data()), batch_size=8, shuffle=True, generator=generator)


@pytest.mark.parametrize("seeded", [False, True], ids=["global-rng", "own-generator"])
def test_a_dataloader_resumes_exactly(tmp_path: Path, seeded: bool) -> None:
    def loader() -> DataLoader:
        return _dataloader(torch.Generator().manual_seed(5) if seeded else None)

    cfg = TrainConfig(epochs=4, optimizer="sgd", lr=0.05)
    reslib.seed_everything(3)
    full = fit(_mlp(), loader(), cfg, progress=False)

    class Interrupt(Exception):
        pass

    def stop_after_two(history: reslib.History, model: object) -> None:
        if len(history) == 2:
            raise Interrupt

    ckpt = tmp_path / "run.pt"
    reslib.seed_everything(3)
    with pytest.raises(Interrupt):
        fit(_mlp(), loader(), cfg, checkpoint=ckpt, callbacks=[stop_after_two], progress=False)
    saved = torch.load(ckpt, weights_only=True)["rng"]["loader"]
    assert list(saved) == (["generator"] if seeded else [])  # sampler shares the generator
    model = _mlp()
    torch.manual_seed(999)  # the global RNG must come from the checkpoint
    resumed = fit(model, loader(), cfg, checkpoint=ckpt, progress=False)
    assert resumed.train_loss == full.train_loss and resumed.train_metric == full.train_metric


# --- defect 6: a failed save -------------------------------------------------------------------


def test_a_failed_save_removes_its_partial_file_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "run.pt"
    _run(ckpt, cfg=TrainConfig(epochs=1))
    good = ckpt.read_bytes()
    real_save = torch.save

    def disk_full(obj: object, f: Path, *args: object, **kwargs: object) -> None:
        Path(f).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(
        OSError,
        match=r"could not write the checkpoint .*run\.pt.*No space left.*"
        r"partial file run\.pt\.tmp was removed.*previous checkpoint is unchanged",
    ):
        _run(ckpt, cfg=TrainConfig(epochs=2), resume_changes=("epochs",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]
    assert ckpt.read_bytes() == good
    monkeypatch.setattr(torch, "save", real_save)


# --- defect 8: integrity -----------------------------------------------------------------------


def test_a_flipped_bit_in_the_weights_is_detected(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    model = _mlp()
    _run(ckpt, model)
    raw = bytearray(ckpt.read_bytes())
    weights = model.head.weight.detach().numpy().tobytes()
    at = raw.find(weights)
    assert at > 0, "the head's weights are stored uncompressed in the file"
    raw[at + len(weights) // 2] ^= 0x01  # one bit of one float
    ckpt.write_bytes(bytes(raw))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2  # torch alone loads it silently
    with pytest.raises(ValueError, match=r"checkpoint .*run\.pt is corrupted.*sha256"):
        _run(ckpt)


def test_a_checkpoint_of_the_old_format_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "old.pt"
    torch.save({"model": {}, "optimizer": {}, "epoch": 1, "history": {}}, ckpt)
    with pytest.raises(ValueError, match=r"not a reslib checkpoint of version 2.*delete it"):
        _run(ckpt)
