"""RESLIB_STAND_IN=1: a missing dataset becomes generated data of its shape, loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from reslib import data
from reslib.data import DatasetUnavailableError, stand_in, synthetic_images


def test_without_the_variable_a_missing_dataset_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(data.STAND_IN_ENV, raising=False)
    with pytest.raises(DatasetUnavailableError, match="CIFAR-10 is not in .*quick profile"):
        data.cifar10(tmp_path, download=False)


def test_with_it_the_stand_in_comes_with_a_warning_and_a_marker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(data.STAND_IN_ENV, "1")
    missing = DatasetUnavailableError("CIFAR-10 is not in /nowhere and could not be downloaded")
    with pytest.warns(UserWarning, match="RESLIB_STAND_IN=1: using generated stand-in data"):
        split = stand_in(missing, lambda: synthetic_images(8, 4))
    assert split.x_train.shape == (8, 3, 32, 32) and split.num_classes == 10
    assert "STAND-IN DATA: CIFAR-10" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "", "yes"])
def test_only_the_value_1_enables_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(data.STAND_IN_ENV, value)
    with pytest.raises(DatasetUnavailableError):
        stand_in(DatasetUnavailableError("X is not in here"), lambda: synthetic_images(8, 4))
