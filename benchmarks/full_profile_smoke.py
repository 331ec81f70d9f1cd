"""Full-profile smoke run on a GPU without a download.

Chapters 1 and 2 train plain-20/56 and ResNet-20/56 on CIFAR-10 in the full profile. The GPU
machines we test on have no network, so this runs the same code path - reslib.fit with the
paper's optimiser, multistep schedule, batch 128, GPU-resident data and on-GPU crop/flip, and a
test loader - on 50,000 CIFAR-shaped synthetic images for a short schedule, and reports the
time per epoch, from which the full chapters' run time follows.

    python benchmarks/full_profile_smoke.py --epochs 2 --out results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import reslib
from reslib.models import resnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    run = reslib.setup(seed=0, profile="full")
    data = reslib.data.synthetic_images(args.images, 10_000, seed=0)
    train, test = reslib.data.loaders(
        data, batch_size=128, device=run.device, augment=reslib.data.random_crop_flip
    )
    config = reslib.TrainConfig(
        epochs=args.epochs,
        lr=0.1,
        optimizer="sgd",
        momentum=0.9,
        weight_decay=1e-4,
        schedule="multistep",
        milestones=(0.5, 0.75),
    )
    rows = []
    for skip in ("none", "identity"):
        for depth in args.depths:
            reslib.seed_everything(0)
            model = resnet.cifar_resnet(depth, skip=skip).to(run.device)
            name = f"{'plain' if skip == 'none' else 'resnet'}{depth}"
            h = reslib.fit(model, train, config, test_loader=test, desc=name, progress=False)
            per_epoch = h.seconds[-1] / len(h)
            rows.append(
                dict(
                    model=name,
                    epochs=len(h),
                    seconds_per_epoch=per_epoch,
                    train_loss=h.train_loss,
                    test_acc=h.test_metric,
                )
            )
            print(
                f"{name:9s} {per_epoch:6.2f} s/epoch (incl. test pass)  "
                f"train loss {h.train_loss[0]:.3f} -> {h.train_loss[-1]:.3f}  "
                f"test acc {h.test_metric[-1]:.3f}",
                flush=True,
            )
    report = {
        "provenance": reslib.provenance(),
        "images": args.images,
        "batch_size": 128,
        "runs": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
