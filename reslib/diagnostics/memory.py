"""What a forward pass makes autograd keep for the backward pass, counted exactly on any device.

Training memory is dominated by the activations autograd saves: a conv saves its input, a ReLU
its output, a BatchNorm its input, and all of it lives until the backward pass frees it. Pleiss
et al. 2017 ("Memory-Efficient Implementation of DenseNets", arXiv 1707.06990) cut a DenseNet's
share of it from quadratic to linear in depth; :func:`saved_activation_bytes` measures it through
``torch.autograd.graph.saved_tensors_hooks``, so the count is deterministic and needs no GPU:
it sums the storages of the saved tensors, each storage once (a ReLU's output that the next
conv saves again costs memory once), and leaves out the model's own parameters and buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reslib.diagnostics.hooks import preserved_state


@dataclass(frozen=True)
class SavedMemory:
    """The activations one forward pass saved for backward.

    Attributes:
        bytes: bytes of the distinct storages saved (what stays allocated until backward).
        tensors: how many times autograd saved a tensor (a storage may be saved many times).
        naive_bytes: the same bytes counted once per save, as if nothing were shared.
    """

    bytes: int
    tensors: int
    naive_bytes: int

    @property
    def megabytes(self) -> float:
        """:attr:`bytes` in MB (10^6 bytes)."""
        return self.bytes / 1e6


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    storage = t.untyped_storage()
    # on the meta device every data_ptr is 0; the storage's own handle still tells them apart
    ptr = storage.data_ptr() if t.device.type != "meta" else storage._cdata
    return (str(t.device), ptr)


def saved_activation_bytes(
    model: nn.Module,
    *inputs: Any,
    forward: Callable[..., Any] | None = None,
) -> SavedMemory:
    """Run ``model(*inputs)`` (or ``forward(*inputs)``) once with gradients on and count what
    autograd saved for the backward pass (see the module docstring).

    The model keeps its train/eval mode (BatchNorm saves more in training) and its buffers are
    restored afterwards; the output is discarded, so the saved tensors are freed on return.
    Works on the ``meta`` device, where nothing is computed: shapes are enough to count.

    >>> saved_activation_bytes(model, torch.randn(64, 3, 32, 32)).megabytes
    """
    own = {_storage_key(t) for t in (*model.parameters(), *model.buffers())}
    seen: dict[tuple[str, int], int] = {}
    count, naive = 0, 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal count, naive
        key = _storage_key(t)
        if key not in own:
            nbytes = t.untyped_storage().nbytes()
            seen[key] = nbytes
            count, naive = count + 1, naive + nbytes
        return t  # keep the tensor itself: the forward pass computes exactly what it would

    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    with preserved_state(model), torch.enable_grad():
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            out = (forward or model)(*inputs)
        del out
    return SavedMemory(bytes=sum(seen.values()), tensors=count, naive_bytes=naive)
