"""Training-speed benchmark: reslib's fast path against the loop a typical tutorial writes.

    python -m reslib.bench                         # on a GPU: ResNet-20 and -56, batch 512
    python -m reslib.bench --ablation --out r.json # plus the default with each trick removed
    python -m reslib.bench --sweep --models resnet20 resnet50  # tf32 vs bf16 per model size
    python -m reslib.bench --smoke                 # tiny CPU configuration: checks it runs

Both sides train the same model with the same batch size and optimizer on the same
CIFAR-shaped synthetic data (no download), for a fixed number of steps after a warm-up:

* **default** - :func:`reslib.fit` with its defaults, over a :class:`reslib.data.TensorLoader`
  whose data sit on the GPU, with batched on-GPU crop and flip: the step in CUDA graphs, the
  precision policy of :mod:`reslib.train.precision` (bf16 on an H100), channels_last and one
  host sync per epoch. A run of 7,000 steps or more also fuses kernels with inductor; on a
  GPU the benchmark times that default as a second row, since its own runs are short;
* **baseline** - ``torch.utils.data.DataLoader`` with torchvision transforms applied per image
  on the CPU by worker processes, fp32, NCHW, and ``loss.item()`` after every step.

GPU time is measured with CUDA events. Results are printed and written as JSON with their
provenance. The techniques are those of Jordan 2024 (airbench, arXiv 2404.00498).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reslib.bench.baseline import AugmentedImages, cpu_loader, run_baseline, steps_of
from reslib.bench.timing import median_seconds
from reslib.data import Split, TensorLoader, random_crop_flip, synthetic_images
from reslib.models import resnet
from reslib.profiles import default_device, reslib_version
from reslib.train import History, TrainConfig, fit

MODELS: dict[str, Callable[[], nn.Module]] = {
    "resnet20": resnet.resnet20,
    "resnet56": resnet.resnet56,
    "resnet110": resnet.resnet110,
    # ImageNet ResNets on 32x32 inputs: the sweep's large models (11.7M and 25.6M parameters)
    "resnet18": resnet.resnet18,
    "resnet50": resnet.resnet50,
}
EPOCH_IMAGES = 50_000  # one CIFAR-10 training epoch


@dataclass(frozen=True)
class Variant:
    """One way to train: which of the default path's techniques are on."""

    name: str
    gpu_data: bool = True  # data resident on the device, augmented there in batches
    channels_last: bool = True
    precision: str = "auto"
    compile: bool | str = "auto"  # "auto": CUDA graphs on a GPU
    sync_every_step: bool = False  # read the loss on the host after every step
    cudnn_benchmark: bool = True  # let cuDNN pick the fastest kernels for the fixed shapes


FAST = Variant("default")  # a short run's default: bf16, CUDA graphs of the eager kernels
# what fit picks by itself for 7,000 planned steps or more; the benchmark's own runs are short,
# so it names the mode (on the CPU, fit never compiles by default: this variant is GPU-only)
LONG_RUN = replace(
    FAST, name="default for a long run (>= 7,000 steps): + inductor's fusion",
    compile="reduce-overhead",
)  # fmt: skip
ABLATIONS = (
    replace(FAST, name="default - CUDA graphs (eager)", compile=False),
    replace(FAST, name="default - GPU-resident data (DataLoader + CPU transforms)", gpu_data=False),
    replace(FAST, name="default - channels_last", channels_last=False),
    replace(FAST, name="default, TF32 instead of bf16", precision="tf32"),
    replace(FAST, name="default, strict fp32 instead of bf16", precision="fp32"),
    replace(FAST, name="default + host sync every step", sync_every_step=True),
    replace(FAST, name="default - cudnn.benchmark", cudnn_benchmark=False),
)
SWEEP = tuple(replace(FAST, name=f"default, {p}", precision=p) for p in ("tf32", "bf16"))
BASELINE = "baseline (DataLoader, CPU transforms, fp32, NCHW)"


@dataclass
class Result:
    model: str
    variant: str
    batch_size: int
    steps: int
    seconds: float
    images_per_s: float
    epoch_seconds: float  # time for a 50,000-image epoch at this rate
    peak_memory_mb: float | None
    compile_seconds: float = 0.0  # compiling and recording graphs, once, before the timing
    setup: str = ""  # what fit reported it ran: precision, graphs or eager


class _Limited:
    """A loader cut to ``n`` steps, with a length so that :func:`fit` can size its schedule."""

    def __init__(self, loader: Iterable[Any], n: int) -> None:
        self.loader, self.n = loader, n
        self.generator = getattr(loader, "generator", None)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterable[Any]:
        return iter(steps_of(self.loader, self.n))


def run_fast(
    model: nn.Module,
    data: Split,
    v: Variant,
    *,
    batch_size: int,
    steps: int,
    warmup: int,
    workers: int,
    device: torch.device,
    repeats: int = 1,
) -> tuple[float, History]:
    """Seconds for ``steps`` steps of :func:`reslib.fit` with variant ``v`` (after warm-up),
    and the History of the warm-up run, which holds the compile time."""
    if v.gpu_data:
        on_device = data.to(device)
        loader: Iterable[Any] = TensorLoader(
            on_device.x_train,
            on_device.y_train,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            augment=random_crop_flip,
        )
    else:
        loader = cpu_loader(data.x_train, data.y_train, batch_size, workers)
    config = TrainConfig(
        epochs=1,
        lr=0.1,
        optimizer="sgd",
        momentum=0.9,
        weight_decay=5e-4,
        precision=v.precision,  # type: ignore[arg-type]
        channels_last=None if v.channels_last else False,  # None: on CUDA only
        compile=v.compile,
    )

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(out, y)
        if v.sync_every_step:
            loss.item()  # what a loop that logs every step pays
        return loss

    torch.backends.cudnn.benchmark = v.cudnn_benchmark
    first = fit(model, _Limited(loader, warmup), config, loss_fn=loss_fn, progress=False)
    seconds = median_seconds(
        lambda: fit(model, _Limited(loader, steps), config, loss_fn=loss_fn, progress=False),
        device,
        repeats,
    )
    return seconds, first


def provenance(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "reslib": reslib_version(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        info.update(
            gpu=torch.cuda.get_device_name(device),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            bf16=torch.cuda.is_bf16_supported(),
            cudnn_tf32=torch.backends.cudnn.allow_tf32,
            matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    return info


def benchmark(
    models: Sequence[str],
    *,
    batch_size: int,
    steps: int,
    warmup: int,
    workers: int,
    ablation: bool,
    images: int,
    device: torch.device,
    sweep: bool = False,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Run every model with the fast path and the baseline (and the ablations); return the
    JSON-ready report."""
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}: expected some of {sorted(MODELS)}")
    # fit() needs at least one step per call, so the warm-up is at least one step too
    if batch_size < 1 or steps < 1 or warmup < 1 or repeats < 1 or images < batch_size:
        raise ValueError(
            "need batch_size >= 1, steps >= 1, warmup >= 1, repeats >= 1 and images >= batch_size"
            f" (got {batch_size}, {steps}, {warmup}, {repeats} and {images})"
        )
    data = synthetic_images(images, batch_size, seed=seed)
    results: list[Result] = []

    def record(name: str, variant: str, seconds: float, first: History | None = None) -> None:
        rate = steps * batch_size / seconds
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        compiling, setup = (first.compile_seconds, first.setup) if first else (0.0, "")
        results.append(
            Result(
                name,
                variant,
                batch_size,
                steps,
                seconds,
                rate,
                EPOCH_IMAGES / rate,
                peak,
                compiling,
                setup,
            )
        )
        print(
            f"{name:9s} {variant:56s} {rate:10,.0f} img/s  {EPOCH_IMAGES / rate:7.3f} s/epoch"
            + (f"  compile {compiling:5.1f} s" if compiling else "")
            + (f"  peak {peak:,.0f} MiB" if peak is not None else "")
            + (f"  [{setup}]" if setup else ""),
            flush=True,
        )

    def fresh(name: str) -> nn.Module:
        torch.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        return MODELS[name]().to(device)

    common = dict(batch_size=batch_size, steps=steps, warmup=warmup, workers=workers, device=device)
    # one untimed run first, so the first measured configuration does not pay for CUDA's
    # start-up and the GPU's clocks ramping up
    run_fast(fresh(models[0]), data, FAST, **common)
    defaults = (FAST, LONG_RUN) if device.type == "cuda" else (FAST,)
    variants = SWEEP if sweep else (*defaults, *ABLATIONS) if ablation else defaults
    for name in models:
        for v in variants:
            seconds, first = run_fast(fresh(name), data, v, repeats=repeats, **common)
            record(name, v.name, seconds, first)
        if not sweep:
            record(name, BASELINE, run_baseline(fresh(name), data, repeats=repeats, **common))

    speedup = {}
    for name in models if not sweep else ():
        rates = {r.variant: r.images_per_s for r in results if r.model == name}
        speedup[name] = rates[FAST.name] / rates[BASELINE]
        print(f"{name}: default path / baseline = {speedup[name]:.2f}x")
        if LONG_RUN.name in rates:
            speedup[f"{name}, long run"] = rates[LONG_RUN.name] / rates[BASELINE]
            print(f"{name}: a long run's default / baseline = {speedup[f'{name}, long run']:.2f}x")
    return {
        "provenance": provenance(device),
        "settings": dict(
            batch_size=batch_size,
            steps=steps,
            warmup=warmup,
            workers=workers,
            images=images,
            repeats=repeats,
            seed=seed,
            data="synthetic CIFAR-shaped (3x32x32)",
        ),
        "results": [asdict(r) for r in results],
        "speedup_default_over_baseline": speedup,
    }


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``minimum``, else a usage error (exit code 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m reslib.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--models", nargs="+", default=["resnet20", "resnet56"], choices=sorted(MODELS)
    )
    positive, non_negative = _int_at_least(1), _int_at_least(0)
    parser.add_argument("--batch-size", type=positive, default=512)
    parser.add_argument("--steps", type=positive, default=200, help="timed steps per repeat")
    parser.add_argument("--warmup", type=positive, default=30, help="untimed steps first (>= 1)")
    parser.add_argument("--repeats", type=positive, default=3, help="timed repeats; the median")
    parser.add_argument(
        "--workers", type=non_negative, default=4, help="baseline DataLoader workers"
    )
    parser.add_argument("--images", type=positive, default=10_000, help="synthetic training images")
    parser.add_argument("--ablation", action="store_true", help="also time each trick removed")
    parser.add_argument(
        "--sweep", action="store_true", help="only the default path in tf32 and in bf16, per model"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny CPU-sized run: checks the benchmark works, measures nothing useful",
    )
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args(argv)

    device = default_device()
    if args.smoke:
        args.models, args.batch_size, args.steps, args.warmup = ["resnet20"], 16, 2, 1
        args.workers, args.images, args.repeats = 0, 64, 1
    elif device.type != "cuda":
        print("No CUDA device: these numbers are CPU timings, not the GPU speed the page reports.")
    report = benchmark(
        args.models,
        batch_size=args.batch_size,
        steps=args.steps,
        warmup=args.warmup,
        workers=args.workers,
        ablation=args.ablation,
        sweep=args.sweep,
        repeats=args.repeats,
        images=args.images,
        device=device,
    )
    report["settings"]["smoke"] = args.smoke
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")
    return report


__all__ = ["AugmentedImages", "BASELINE", "EPOCH_IMAGES", "MODELS", "benchmark", "main"]
