"""Checkpoints that a run can trust: tied to their run, checked for damage, written atomically.

A checkpoint holds everything an epoch boundary needs to continue bitwise-identically: model,
optimiser and gradient-scaler state, the History, and every random state (torch CPU and CUDA,
Python, NumPy, and the loader's generators). Three guards keep it honest:

* **identity**: a fingerprint of the model (class, ``repr`` and state-dict shapes, so a plain
  twin and its residual twin differ, though their keys and shapes agree), the
  :class:`~reslib.train.TrainConfig` and the metric's name. Resuming under another model or
  config raises ``ValueError`` saying what differs, unless ``fit(resume_changes=...)`` accepts
  the change deliberately.
* **integrity**: a sha256 over every value, tensors' bytes included, in a fixed order, checked
  on load, so a flipped bit in the weights cannot load silently.
* **atomic writes**: the file is written next to the target and renamed over it; a failed save
  removes its partial file and leaves the previous checkpoint intact.

What cannot be restored: the position *inside* an epoch (a run resumes at the last epoch
boundary), the state of an ``IterableDataset`` or any other iterator the loader wraps, random
state inside DataLoader worker processes beyond the base seed they draw from the restored
generators, and a loader's randomness that lives anywhere but ``loader.generator``,
``loader.sampler.generator``, ``loader.batch_sampler.sampler.generator`` or the global RNGs.
A ``DataLoader`` without its own generator draws its shuffling seed from torch's global RNG,
which *is* restored, so its order continues exactly.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import random
import warnings
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reslib.train.config import TrainConfig
from reslib.train.history import History
from reslib.train.schedule import hyperparameters

FORMAT = "reslib.train checkpoint"
VERSION = 2
KEYS = ("format", "version", "identity", "model", "optimizer", "scaler", "epoch", "history", "rng")
# where a loader keeps its random generators (DataLoader shares one object between the first two)
GENERATOR_PATHS = ("generator", "sampler.generator", "batch_sampler.sampler.generator")
# what fit(resume_changes=...) may name besides TrainConfig's fields
EXTRA_CHANGES = ("model", "metric")


def fingerprint(model: nn.Module) -> dict[str, Any]:
    """The class, ``repr`` and state-dict shapes of ``model``, and a sha256 over all three."""
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    text = "\n".join([cls, repr(model), *(f"{k} {v}" for k, v in shapes.items())])
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"class": cls, "repr": repr(model), "shapes": shapes, "sha256": digest}


def _limited(items: list[str], n: int = 8) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def model_mismatch(saved: dict[str, Any], current: dict[str, Any], *, structure_only: bool) -> str:
    """What differs between two fingerprints ('' when they match).

    Missing and unexpected keys and shape mismatches always count; the class and ``repr``
    count unless ``structure_only``.
    """
    old, new = saved["shapes"], current["shapes"]
    problems = []
    if missing := [k for k in new if k not in old]:
        problems.append(f"missing from the checkpoint: {_limited(missing)}")
    if unexpected := [k for k in old if k not in new]:
        problems.append(f"unexpected in the checkpoint: {_limited(unexpected)}")
    if shapes := [f"{k} {old[k]} vs {new[k]}" for k in new if k in old and old[k] != new[k]]:
        problems.append(f"shape mismatches (checkpoint vs model): {_limited(shapes)}")
    if problems or structure_only or saved["sha256"] == current["sha256"]:
        return "; ".join(problems)
    if saved["class"] != current["class"]:
        return f"it was written by a {saved['class']}, this model is a {current['class']}"
    diff = difflib.ndiff(saved["repr"].splitlines(), current["repr"].splitlines())
    lines = list(dict.fromkeys(line.strip() for line in diff if line[:1] in "+-"))
    return (
        "same keys and shapes but another architecture (e.g. a plain vs a residual twin); "
        f"repr lines '-' in the checkpoint, '+' in this model: {_limited(lines, 4)}"
    )


def checksum(obj: Any) -> str:
    """sha256 over ``obj``'s values in a fixed order, tensors by dtype, shape and bytes."""
    h = hashlib.sha256()

    def feed(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous().reshape(-1)
            h.update(f"tensor {t.dtype} {tuple(o.shape)}\n".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        elif isinstance(o, dict):
            h.update(f"dict {len(o)}\n".encode())
            for k, v in o.items():
                feed(k)
                feed(v)
        elif isinstance(o, (list, tuple)):
            h.update(f"{type(o).__name__} {len(o)}\n".encode())
            for v in o:
                feed(v)
        else:  # str, int, float (repr round-trips exactly), bool, None
            h.update(f"{type(o).__name__} {o!r}\n".encode())

    feed(obj)
    return h.hexdigest()


def loader_generators(loader: Iterable[Any]) -> dict[str, torch.Generator]:
    """The distinct torch generators a loader shuffles with, by attribute path."""
    found: dict[str, torch.Generator] = {}
    for path in GENERATOR_PATHS:
        obj: Any = loader
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
        if isinstance(obj, torch.Generator) and all(obj is not g for g in found.values()):
            found[path] = obj
    return found


def rng_states(loader: Iterable[Any], device: torch.device) -> dict[str, Any]:
    """Every random state a run draws from, in a form ``torch.load(weights_only=True)`` reads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "loader": {path: g.get_state() for path, g in loader_generators(loader).items()},
    }
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(states: dict[str, Any], loader: Iterable[Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"].cpu())
    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in states and device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"].cpu(), device)
    generators = loader_generators(loader)
    if set(generators) != set(states["loader"]):
        warnings.warn(
            f"the checkpoint saved the loader generators {sorted(states['loader'])} but this "
            f"loader has {sorted(generators)}; its shuffling will not continue exactly",
            stacklevel=3,
        )
    for path, state in states["loader"].items():
        if path in generators:
            generators[path].set_state(state.cpu())


def save_atomic(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` with its checksum to ``path`` via a temporary file and a rename.

    A crash mid-save never corrupts the last good checkpoint; a failed save (a full disk)
    removes its partial file and raises ``OSError`` saying so.
    """
    state = {**state, "sha256": checksum(state)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if not isinstance(err, OSError):
            raise
        previous = "the previous checkpoint is unchanged" if path.exists() else "none was saved"
        raise OSError(
            f"could not write the checkpoint {path} ({type(err).__name__}: {err}); the partial "
            f"file {tmp.name} was removed and {previous}. Free some disk space or pass another "
            "checkpoint path"
        ) from err


def load_verified(path: Path, device: torch.device) -> dict[str, Any]:
    """Read a checkpoint (tensors only: ``weights_only=True``) and verify its checksum."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # unpickling errors come in several types
        raise ValueError(
            f"{path} is not a readable reslib checkpoint ({type(err).__name__}: {err}); "
            "delete it to start over"
        ) from err
    if not isinstance(state, dict) or "sha256" not in state or any(k not in state for k in KEYS):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"{path} is not a reslib checkpoint of version {VERSION} (found {found}); "
            "delete it to start over"
        )
    stored = state.pop("sha256")
    if checksum(state) != stored:
        raise ValueError(
            f"checkpoint {path} is corrupted: its contents do not match the sha256 checksum "
            "written with it (a flipped bit or a file changed on disk); delete it to start over"
        )
    return state


@dataclass
class RunState:
    """The objects of a run that a checkpoint saves and restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loader: Iterable[Any]
    device: torch.device


class Checkpoint:
    """The file a run writes after every epoch, and resumes from when it exists."""

    def __init__(
        self, path: str | os.PathLike[str], model: nn.Module, config: TrainConfig, metric: str
    ) -> None:
        self.path = Path(path)
        self.config = config
        self.identity = {"model": fingerprint(model), "config": config.as_dict(), "metric": metric}

    def exists(self) -> bool:
        return self.path.exists()

    def _accepted_changes(self, saved: dict[str, Any], resume_changes: Collection[str]) -> set[str]:
        """The fields that differ from the checkpoint's run; raise unless all are accepted."""
        valid = (*(f.name for f in fields(TrainConfig)), *EXTRA_CHANGES)
        if unknown := sorted(set(resume_changes) - set(valid)):
            raise ValueError(f"resume_changes: unknown names {unknown}; valid: {valid}")
        mismatch = model_mismatch(
            saved["model"], self.identity["model"], structure_only="model" in resume_changes
        )
        if mismatch:
            raise ValueError(
                f"checkpoint {self.path} does not match this model: {mismatch}; delete it or "
                "pass another checkpoint path"
            )
        old = {**saved["config"], "metric": saved["metric"]}
        new = {**self.identity["config"], "metric": self.identity["metric"]}
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        if refused := sorted(changed - set(resume_changes)):
            listed = "; ".join(
                f"{k}: {old.get(k)!r} in the checkpoint, {new.get(k)!r} now" for k in refused
            )
            raise ValueError(
                f"checkpoint {self.path} was written with another configuration ({listed}). "
                "Resume with the same settings, delete the checkpoint to start over, or accept "
                f"the change deliberately with fit(..., resume_changes={tuple(refused)!r})"
            )
        return changed

    def resume(self, run: RunState, resume_changes: Collection[str] = ()) -> tuple[History, int]:
        """Load the checkpoint into the run's objects; return its History and epoch count."""
        state = load_verified(self.path, run.device)
        changed = self._accepted_changes(state["identity"], resume_changes)
        run.model.load_state_dict(state["model"])  # keys and shapes were compared above
        if "optimizer" not in changed:  # another optimiser starts with a fresh state
            run.optimizer.load_state_dict(state["optimizer"])
        for group in run.optimizer.param_groups:  # an accepted momentum/decay change applies now
            group.update(hyperparameters(self.config))
        if run.scaler.is_enabled() and state["scaler"]:
            run.scaler.load_state_dict(state["scaler"])
        restore_rng_states(state["rng"], run.loader, run.device)
        history = History.from_dict(state["history"])
        history.metric = self.identity["metric"]
        return history, state["epoch"]

    def save(self, run: RunState, epoch: int, history: History) -> None:
        """Write the state after ``epoch`` epochs."""
        state = {
            "format": FORMAT,
            "version": VERSION,
            "identity": self.identity,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(),
            "epoch": epoch,
            "history": history.as_dict(),
            "rng": rng_states(run.loader, run.device),
        }
        save_atomic(self.path, state)
