"""The speed benchmark's CPU smoke configuration: it runs and reports; it claims no speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reslib import bench


def test_smoke_run_writes_a_report_with_provenance(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    report = bench.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    variants = {r["variant"] for r in report["results"]}
    assert variants == {"default", bench.BASELINE}
    for r in report["results"]:
        assert r["images_per_s"] > 0 and r["steps"] == 2 and r["batch_size"] == 16
        assert r["epoch_seconds"] == pytest.approx(bench.EPOCH_IMAGES / r["images_per_s"])
    assert report["provenance"]["torch"] == torch.__version__
    assert report["settings"]["smoke"] is True
    assert report["speedup_default_over_baseline"]["resnet20"] > 0
    # on the CPU the default path is eager fp32, and it says so
    default = next(r for r in report["results"] if r["variant"] == "default")
    assert default["setup"] == "fp32 · eager" and default["compile_seconds"] == 0.0


def test_baseline_dataset_augments_each_image_on_its_own() -> None:
    x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
    data = bench.AugmentedImages(x, y)
    image, label = data[2]
    assert image.shape == (3, 32, 32) and label == 2
    # a crop of the zero-padded image or its mirror: every row of the output is in the input
    # shifted, so its values are a subset of the input's values and zeros
    values = set(x[2].flatten().tolist()) | {0.0}
    assert set(image.flatten().tolist()) <= values


def _benchmark(**overrides: object) -> dict[str, object]:
    settings: dict[str, object] = dict(
        models=["resnet20"], batch_size=4, steps=1, warmup=1, workers=0, ablation=False, images=8
    )
    settings.update(overrides)
    models = settings.pop("models")
    return bench.benchmark(models, device=torch.device("cpu"), **settings)  # type: ignore[arg-type]


def test_bad_settings_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        _benchmark(models=["resnet1000"], batch_size=4, warmup=0)
    with pytest.raises(ValueError, match="images >= batch_size"):
        _benchmark(models=["resnet20"], batch_size=64, warmup=0)


@pytest.mark.gpu
def test_benchmark_runs_on_cuda_and_reports_gpu_memory(tmp_path: Path) -> None:
    report = bench.main(
        [
            "--models",
            "resnet20",
            "--steps",
            "5",
            "--warmup",
            "2",
            "--batch-size",
            "128",
            "--images",
            "1024",
            "--out",
            str(tmp_path / "b.json"),
        ]
    )
    assert report["provenance"]["gpu"]
    assert all(r["peak_memory_mb"] > 0 for r in report["results"])
    rows = {r["variant"]: r for r in report["results"]}
    default, long_run = rows["default"], rows[bench.LONG_RUN.name]
    assert "CUDA graphs (cudagraphs)" in default["setup"] and default["compile_seconds"] > 0
    assert "CUDA graphs (reduce-overhead)" in long_run["setup"]
    assert set(report["speedup_default_over_baseline"]) == {"resnet20", "resnet20, long run"}


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--warmup", "0", "must be >= 1, got 0"),
        ("--steps", "0", "must be >= 1, got 0"),
        ("--steps", "-3", "must be >= 1, got -3"),
        ("--batch-size", "x", "expected an integer, got 'x'"),
        ("--workers", "-1", "must be >= 0, got -1"),
    ],
)
def test_bad_command_line_values_are_usage_errors(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        bench.main(["--smoke", flag, value])
    assert info.value.code == 2  # argparse's usage error, not a traceback
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and message in err


def test_benchmark_refuses_a_zero_warmup() -> None:
    with pytest.raises(ValueError, match=r"warmup >= 1"):
        _benchmark(models=["resnet20"], batch_size=4, warmup=0)
