"""saved_activation_bytes: exact counts on small graphs, storages counted once, parameters left
out, the same count on the CPU and the meta device, the model left as it was, and the memory a
checkpointed DenseNet saves."""

from __future__ import annotations

import torch
from torch import nn

from reslib.diagnostics import SavedMemory, saved_activation_bytes
from reslib.models import densenet


def test_counts_each_saved_storage_once_and_no_parameters() -> None:
    # Linear saves its input (the weight is a parameter: left out); ReLU saves its output,
    # which the second Linear saves again: one storage, counted once
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    x = torch.randn(4, 5)
    saved = saved_activation_bytes(model, x)
    assert saved.bytes == 4 * (4 * 5 + 4 * 7)  # float32: x and relu(x W^T + b)
    assert saved.naive_bytes == 4 * (4 * 5 + 2 * 4 * 7)
    assert saved.tensors == 3
    assert saved.megabytes == saved.bytes / 1e6


def test_nothing_is_saved_without_a_gradient_to_compute() -> None:
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU()).requires_grad_(False)
    assert saved_activation_bytes(model, torch.randn(4, 5)) == SavedMemory(0, 0, 0)


def test_meta_device_counts_what_the_cpu_counts() -> None:
    counts = []
    for device in ("cpu", "meta"):
        torch.manual_seed(0)
        with torch.device(device):
            model = densenet.cifar_densenet(10, 4, bottleneck=True, compression=0.5)
            x = torch.randn(2, 3, 8, 8)
        counts.append(saved_activation_bytes(model, x))
    assert counts[0] == counts[1]


def test_leaves_the_model_as_it_was() -> None:
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU()).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    saved_activation_bytes(model, torch.randn(3, 1, 10))
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # running statistics restored


def test_checkpointing_saves_memory_in_a_densenet() -> None:
    with torch.device("meta"):  # shapes are enough
        model = densenet.cifar_densenet(28, 6, bottleneck=True, compression=0.5)
        x = torch.randn(8, 3, 16, 16)
    plain = saved_activation_bytes(model, x)
    branch = saved_activation_bytes(model.set_memory_efficient(True), x)
    bottleneck = saved_activation_bytes(model.set_memory_efficient(True, scope="bottleneck"), x)
    assert branch.bytes < bottleneck.bytes < plain.bytes
    assert branch.bytes < 0.6 * plain.bytes


def test_a_custom_forward() -> None:
    model = nn.Linear(3, 2)
    saved = saved_activation_bytes(model, torch.randn(4, 3), forward=lambda x: model(x).exp())
    assert saved.bytes == 4 * (4 * 3 + 4 * 2)  # the input, and exp's output
