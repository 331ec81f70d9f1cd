"""peak_activation_bytes and latency: exact peaks on small chains (a plain chain holds two
activations, a skip three), views and parameters not counted, the same count on the CPU and
the meta device, gradients on keep everything, bad input raises, the model left as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reslib.diagnostics.cost import Latency, PeakMemory, latency, peak_activation_bytes
from reslib.diagnostics.memory import saved_activation_bytes
from reslib.layers import ResidualBlock
from reslib.models import resnet

N = 4 * 8 * 4  # bytes of one (4, 8) float32 activation


def _chain(depth: int = 4) -> nn.Sequential:
    return nn.Sequential(*(nn.Linear(8, 8) for _ in range(depth)))


def test_a_plain_chain_holds_its_input_and_output_only() -> None:
    # each Linear reads one activation and writes one; the previous is freed once read, the
    # weight's transpose is a view of a parameter and costs nothing
    memory = peak_activation_bytes(_chain(), torch.randn(4, 8))
    assert memory == PeakMemory(peak_bytes=2 * N, total_bytes=4 * N, retained_bytes=N)
    assert memory.peak_megabytes == 2 * N / 1e6


def test_a_skip_keeps_its_input_alive_until_the_addition() -> None:
    block = ResidualBlock(_chain(2))  # y = F(x) + x, F two linear layers
    chain = nn.Sequential(nn.Linear(8, 8), block)
    # inside the block: the block's input x, F's hidden layer and F's output are alive
    assert peak_activation_bytes(chain, torch.randn(4, 8)).peak_bytes == 3 * N
    assert peak_activation_bytes(block, torch.randn(4, 8)).peak_bytes == 2 * N  # x is an input


def test_no_grad_equals_inference_mode_and_gradients_keep_every_activation() -> None:
    model, x = _chain(), torch.randn(4, 8)
    assert peak_activation_bytes(model, x, mode="no_grad") == peak_activation_bytes(model, x)
    with_grad = peak_activation_bytes(model, x, mode="grad")
    assert with_grad.peak_bytes == with_grad.retained_bytes == 4 * N  # nothing freed
    assert with_grad.peak_bytes >= saved_activation_bytes(model, x).bytes


def test_meta_device_counts_what_the_cpu_counts() -> None:
    counts = []
    for device in ("cpu", "meta"):
        torch.manual_seed(0)
        with torch.device(device):
            model = resnet.cifar_resnet(8, width=4, num_classes=3).eval()
            x = torch.randn(2, 3, 8, 8)
        counts.append(peak_activation_bytes(model, x))
    assert counts[0] == counts[1]


def test_leaves_the_model_as_it_was() -> None:
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU()).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    peak_activation_bytes(model, torch.randn(3, 1, 10), mode="grad")
    latency(model, torch.randn(3, 1, 10), repeats=2, warmup=0)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_latency_reports_ordered_quartiles() -> None:
    result = latency(_chain(), torch.randn(4, 8), repeats=5, warmup=1)
    assert isinstance(result, Latency) and result.runs == 5
    assert 0 < result.q25_ms <= result.median_ms <= result.q75_ms


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="unknown mode 'train'"):
        peak_activation_bytes(_chain(), torch.randn(4, 8), mode="train")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeats >= 2"):
        latency(_chain(), torch.randn(4, 8), repeats=1)
