"""The loop a typical tutorial writes, which the benchmark measures reslib's default path
against: a ``DataLoader`` with torchvision transforms applied per image on the CPU by worker
processes, fp32, NCHW, torch's default cuDNN settings and ``loss.item()`` after every step."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reslib.bench.timing import median_seconds
from reslib.data import Split


class AugmentedImages(Dataset):
    """The textbook dataset: one image at a time through torchvision transforms."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        from torchvision import transforms

        self.x, self.y = x, y
        self.transform = transforms.Compose(
            [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
        )

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.x[i]), self.y[i]


def cpu_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(
        AugmentedImages(x, y),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )


def steps_of(loader: Iterable[Any], n: int) -> Iterator[Any]:
    """The first ``n`` batches of ``loader``, cycling if it is shorter."""
    done = 0
    while done < n:
        for batch in loader:
            yield batch
            done += 1
            if done == n:
                return


def run_baseline(
    model: nn.Module,
    data: Split,
    *,
    batch_size: int,
    steps: int,
    warmup: int,
    workers: int,
    device: torch.device,
    repeats: int = 1,
) -> float:
    """Seconds for ``steps`` steps of the tutorial loop (after warm-up)."""
    loader = cpu_loader(data.x_train, data.y_train, batch_size, workers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()

    def train(n: int) -> None:
        running_loss = 0.0
        for x, y in steps_of(loader, n):
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()

    torch.backends.cudnn.benchmark = False  # torch's default, which a tutorial keeps
    train(warmup)
    return median_seconds(lambda: train(steps), device, repeats)
