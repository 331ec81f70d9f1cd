"""What a run leaves behind: :class:`History`, one entry per epoch, and :class:`StopTraining`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class StopTraining(Exception):
    """Raise from a callback to end :func:`~reslib.train.fit` after the current epoch."""


@dataclass
class History:
    """Per-epoch numbers of one :func:`~reslib.train.fit` run, plus its provenance.

    ``train_metric`` and ``test_metric`` hold the run's metric (named by ``metric``, e.g.
    ``"accuracy"`` or ``"mean IoU"``); the test lists are empty without a test loader.
    ``seconds`` is the cumulative training time; the time spent compiling the model and
    recording its CUDA graphs (the first steps on a GPU) is ``compile_seconds``, apart.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_metric: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # the rate of each epoch's last step
    seconds: list[float] = field(default_factory=list)  # cumulative training wall time
    metric: str = "accuracy"
    compile_seconds: float = 0.0  # compiling and recording CUDA graphs, apart from ``seconds``
    setup: str = ""  # how the steps ran: precision, CUDA graphs or eager, processes
    provenance: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def __len__(self) -> int:
        return len(self.epoch)

    def add_epoch(
        self,
        epoch: int,
        train: tuple[float, float],
        test: tuple[float, float] | None,
        lr: float,
        seconds: float,
    ) -> None:
        """Append one epoch: ``train`` and ``test`` are ``(loss, metric)`` pairs."""
        self.epoch.append(epoch)
        self.train_loss.append(train[0])
        self.train_metric.append(train[1])
        if test is not None:
            self.test_loss.append(test[0])
            self.test_metric.append(test[1])
        self.lr.append(lr)
        self.seconds.append(seconds)

    def summary(self) -> str:
        """The last epoch's numbers and the run's provenance, ready to print under a result."""
        if not self.epoch:
            return "no epochs trained"
        parts = [f"epoch {self.epoch[-1]}", f"train loss {self.train_loss[-1]:.4f}"]
        if not math.isnan(self.train_metric[-1]):
            parts.append(f"train {self.metric} {self.train_metric[-1]:.3f}")
        if self.test_loss:
            parts.append(f"test loss {self.test_loss[-1]:.4f}")
            parts.append(f"test {self.metric} {self.test_metric[-1]:.3f}")
        timing = f"{self.seconds[-1]:.1f} s"
        if self.compile_seconds:
            timing += f" (+ {self.compile_seconds:.1f} s compiling)"
        parts.append(timing + (f" · {self.setup}" if self.setup else ""))
        return " · ".join(parts) + (f"\n  [{self.provenance}]" if self.provenance else "")
