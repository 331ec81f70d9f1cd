"""Train any reslib model on any reslib dataset with a named recipe, on one GPU or several.

::

    python -m reslib.recipes --model resnet56 --data cifar10 --recipe he2016-cifar --out runs/r56
    torchrun --nproc-per-node 4 -m reslib.recipes --model resnet110 --data cifar10 \\
        --recipe he2016-cifar --checkpoint runs/r110.pt --out runs/r110

One command reproduces a row of He et al. 2016's Table 6 ("Deep Residual Learning for Image
Recognition", arXiv 1512.03385, Sec. 4.2): SGD with momentum 0.9 and weight decay 1e-4, batch
128, learning rate 0.1 divided by 10 at 32k and 48k iterations, 64k iterations in all, with
4-pixel padding, random crops and flips. Under ``torchrun`` the batch is the *global* batch,
split evenly over the processes (:mod:`reslib.train.distributed`), so the recipe means the
same on one GPU or eight. A checkpoint written by N processes resumes on M.

The model is a builder of :mod:`reslib.models` (``resnet56``, ``plain.DeepMLP``, ...), called
with ``--model-args`` (``depth=110 skip=none``) and, where it takes them, the dataset's
``num_classes``, ``in_features`` or ``in_channels``. Only rank 0 prints and writes ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import reslib.data as data
import reslib.models as models
from reslib.profiles import setup
from reslib.train import TrainConfig, fit
from reslib.train import distributed as dist


@dataclass(frozen=True)
class Recipe:
    """A named way to train: the optimiser and schedule, the global batch and the augmentation.

    ``iterations``, when set, fixes the length in steps (as papers state it); the epochs follow
    from the training set's size, rounded up.
    """

    description: str
    config: TrainConfig
    batch_size: int
    augment: bool = False
    iterations: int | None = None


RECIPES: dict[str, Recipe] = {
    "he2016-cifar": Recipe(
        "He et al. 2016, Sec. 4.2: SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, "
        "lr / 10 at 32k and 48k of 64k iterations, pad-crop-flip",
        TrainConfig(
            lr=0.1,
            optimizer="sgd",
            momentum=0.9,
            weight_decay=1e-4,
            schedule="multistep",
            milestones=(0.5, 0.75),
        ),
        batch_size=128,
        augment=True,
        iterations=64_000,
    ),
    "quick": Recipe(
        "a short Adam run for checks and small data: lr 1e-3, batch 128, 5 epochs",
        TrainConfig(epochs=5, lr=1e-3, optimizer="adam"),
        batch_size=128,
    ),
}

DATASETS: dict[str, Callable[[Path | None], data.Split]] = {
    "cifar10": lambda root: data.cifar10(root),
    "mnist1d": lambda root: data.mnist1d(root),
    # CIFAR-shaped random data with learnable labels: the pipeline without a download
    "synthetic-cifar": lambda root: data.synthetic_images(50_000, 10_000),
}


def builder(name: str) -> Callable[..., nn.Module]:
    """The builder ``name`` (``"resnet56"``) or ``"family.name"`` (``"plain.DeepMLP"``)."""
    family, _, short = name.rpartition(".")
    modules = [getattr(models, family)] if family in models.__all__ else []
    if not family:
        modules = [getattr(models, m) for m in models.__all__]
    for module in modules:
        found = getattr(module, short, None)
        if callable(found) and not short.startswith("_"):
            return found  # type: ignore[no-any-return]
    families = ", ".join(m for m in models.__all__ if m not in ("base", "torchvision_weights"))
    raise ValueError(
        f"no model builder {name!r} in reslib.models; name one such as 'resnet56' or "
        f"'plain.DeepMLP' from the families {families}"
    )


def parse_model_args(items: Sequence[str]) -> dict[str, Any]:
    """``["depth=110", "skip=none"]`` -> ``{"depth": 110, "skip": "none"}``."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"model arguments are key=value, got {item!r}")
        try:
            parsed[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed[key] = text  # a bare word is a string: skip=none
    return parsed


def build_model(name: str, kwargs: dict[str, Any], split: data.Split) -> nn.Module:
    """Call the builder with ``kwargs`` plus what the data decide and the builder accepts."""
    make = builder(name)
    accepted = inspect.signature(make).parameters
    x = split.x_train
    from_data = {
        "num_classes": split.num_classes,
        "in_features": x.shape[-1] if x.ndim == 2 else None,
        "in_channels": x.shape[1] if x.ndim > 2 else None,
    }
    for key, value in from_data.items():
        if key in accepted and key not in kwargs and value is not None:
            kwargs = {**kwargs, key: value}
    return make(**kwargs)


def epochs_for(recipe: Recipe, train_size: int, world_batch: int) -> int:
    """The recipe's epochs: from its iterations where it states them."""
    if recipe.iterations is None:
        return recipe.config.epochs
    return math.ceil(recipe.iterations / (train_size // world_batch))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m reslib.recipes", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="a reslib.models builder, e.g. resnet56")
    parser.add_argument("--model-args", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data", required=True, choices=sorted(DATASETS))
    parser.add_argument("--recipe", default="he2016-cifar", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, help="override the recipe's length")
    parser.add_argument("--batch-size", type=int, help="override the global batch")
    parser.add_argument("--lr", type=float, help="override the peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="where datasets live (default: data/)")
    parser.add_argument("--checkpoint", type=Path, help="written every epoch; resumed if there")
    parser.add_argument("--resume-changes", nargs="*", default=[], metavar="FIELD")
    parser.add_argument("--sync-batchnorm", action="store_true", help="SyncBatchNorm under DDP")
    parser.add_argument("--out", type=Path, help="write history.json and model.pt here")
    args = parser.parse_args(argv)

    device = dist.init_from_env()
    rank, world = dist.rank(), dist.world_size()
    try:
        recipe = RECIPES[args.recipe]
        setup(seed=args.seed, verbose=rank == 0)  # seeds every process alike
        if rank != 0:
            dist.barrier()  # rank 0 downloads or generates the data first, once
        split = DATASETS[args.data](args.data_dir)
        if rank == 0:
            dist.barrier()
        model = build_model(args.model, parse_model_args(args.model_args), split).to(device)
        batch = args.batch_size or recipe.batch_size
        on_device = split.to(device)
        augment = data.random_crop_flip if recipe.augment and on_device.x_train.ndim == 4 else None
        train = data.TensorLoader(
            on_device.x_train,
            on_device.y_train,
            batch_size=batch,
            shuffle=True,
            drop_last=True,
            augment=augment,
            seed=args.seed,
            shard=(rank, world),
        )
        test = data.TensorLoader(
            on_device.x_test, on_device.y_test, batch_size=4 * batch, shard=(rank, world)
        )
        config = replace(
            recipe.config,
            epochs=args.epochs or epochs_for(recipe, len(on_device.y_train), batch),
            lr=args.lr or recipe.config.lr,
            sync_batchnorm=args.sync_batchnorm,
        )
        history = fit(
            model,
            train,
            config,
            test_loader=test,
            checkpoint=args.checkpoint,
            resume_changes=args.resume_changes,
            progress=rank == 0,
            desc=args.model,
        )
        report = {
            "model": args.model,
            "model_args": args.model_args,
            "data": args.data,
            "recipe": args.recipe,
            "global_batch": batch,
            "processes": world,
            "config": config.as_dict(),
            "history": history.as_dict(),
        }
        if rank == 0:
            print(history.summary(), flush=True)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "history.json").write_text(json.dumps(report, indent=2))
                state = {k: v.cpu() for k, v in model.state_dict().items()}
                torch.save(state, args.out / "model.pt")
        return report
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
