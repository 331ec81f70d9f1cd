"""Training under ``torchrun`` with two CPU processes over gloo, through the recipe CLI.

Two processes on the same global batch must train the same parameters as one process (the
shards of every batch are the batch, and DistributedDataParallel averages the gradients), and a
checkpoint written by two processes must resume in one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reslib import data, recipes
from reslib.data import TensorLoader

MLP = ["--model", "plain.DeepMLP", "--model-args", "depth=2", "width=32"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    data.mnist1d(root)  # generated once here, not by every run
    return root


def _args(out: Path, data_dir: Path, *extra: str) -> list[str]:
    return [
        *MLP, "--data", "mnist1d", "--recipe", "quick", "--batch-size", "64",
        "--data-dir", str(data_dir), "--out", str(out), *extra,
    ]  # fmt: skip


def _torchrun(processes: int, args: list[str]) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*launcher, f"--nproc-per-node={processes}", "-m", "reslib.recipes", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=True)


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_two_processes_train_what_one_does_and_their_checkpoint_resumes_in_one(
    tmp_path: Path, data_dir: Path
) -> None:
    ckpt = tmp_path / "run.pt"
    _torchrun(2, _args(tmp_path / "two", data_dir, "--epochs", "1", "--checkpoint", str(ckpt)))
    report = json.loads((tmp_path / "two" / "history.json").read_text())
    assert report["processes"] == 2 and report["history"]["setup"] == "fp32 · eager · DDP × 2"
    assert ckpt.exists()
    # the same global batches in one process (this one): the same parameters
    recipes.main(_args(tmp_path / "one", data_dir, "--epochs", "1"))
    _assert_same(_weights(tmp_path / "two"), _weights(tmp_path / "one"))

    # the two processes' checkpoint, resumed by one process, continues as one process would
    recipes.main(
        _args(tmp_path / "resumed", data_dir, "--epochs", "2", "--checkpoint", str(ckpt),
              "--resume-changes", "epochs")
    )  # fmt: skip
    recipes.main(_args(tmp_path / "straight", data_dir, "--epochs", "2"))
    _assert_same(_weights(tmp_path / "resumed"), _weights(tmp_path / "straight"))
    one, straight = _weights(tmp_path / "one"), _weights(tmp_path / "straight")
    assert any(not torch.equal(one[k], straight[k]) for k in one)  # the second epoch trained
    resumed = json.loads((tmp_path / "resumed" / "history.json").read_text())["history"]
    assert (
        resumed["epoch"] == [1, 2]
        and resumed["train_loss"][0] == report["history"]["train_loss"][0]
    )


def test_the_shards_of_a_batch_are_the_batch() -> None:
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    whole = TensorLoader(x, y, batch_size=4, shuffle=True, seed=3)
    shards = [TensorLoader(x, y, batch_size=4, shuffle=True, seed=3, shard=(r, 2)) for r in (0, 1)]
    for (_, yb), *parts in zip(whole, *shards, strict=True):
        assert sorted(torch.cat([p[1] for p in parts]).tolist()) == sorted(yb.tolist())
        assert all(len(p[1]) == len(yb) // 2 for p in parts)
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        TensorLoader(x, y, batch_size=4, shard=(0, 3))
    with pytest.raises(ValueError, match=r"0 <= rank < world_size, got \(2, 2\)"):
        TensorLoader(x, y, batch_size=4, shard=(2, 2))


def test_he2016_recipe_is_the_papers_schedule() -> None:
    recipe = recipes.RECIPES["he2016-cifar"]
    cfg = recipe.config
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay) == ("sgd", 0.1, 0.9, 1e-4)
    assert recipe.batch_size == 128 and recipe.augment and cfg.milestones == (0.5, 0.75)
    epochs = recipes.epochs_for(recipe, 50_000, 128)  # 390 steps an epoch
    assert epochs == 165 and abs(epochs * 390 - 64_000) < 390


def test_cli_names_and_arguments_fail_clearly() -> None:
    assert recipes.builder("resnet56") is recipes.builder("resnet.resnet56")
    with pytest.raises(ValueError, match="no model builder 'resnet57'.*resnet56"):
        recipes.builder("resnet57")
    assert recipes.parse_model_args(["depth=110", "skip=none", "width=1.5"]) == {
        "depth": 110, "skip": "none", "width": 1.5,
    }  # fmt: skip
    with pytest.raises(ValueError, match="key=value, got 'depth'"):
        recipes.parse_model_args(["depth"])
