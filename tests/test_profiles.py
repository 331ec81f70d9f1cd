"""reslib.profiles: profile choice, seeding, flush-denormal, provenance, by_profile and claim."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

import reslib
from reslib.profiles import PROFILE_ENV, ClaimError, by_profile, claim, setup


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend there is no GPU and no profile in the environment."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(PROFILE_ENV, raising=False)


def test_setup_picks_quick_on_the_cpu(no_cuda: None) -> None:
    run = setup(seed=0, verbose=False)
    assert run.profile == "quick"
    assert run.device == torch.device("cpu")
    assert reslib.active() is run


def test_default_profile_is_full_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert reslib.default_profile() == "full"
    assert reslib.default_device() == torch.device("cuda")


@pytest.mark.parametrize("name", ["quick", "full"])
def test_setup_honours_the_environment(
    no_cuda: None, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(PROFILE_ENV, name)
    assert setup(seed=0, verbose=False).profile == name


def test_profile_argument_overrides_the_environment(
    no_cuda: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROFILE_ENV, "quick")
    assert setup(seed=0, profile="full", verbose=False).profile == "full"


def test_unknown_profile_names_the_valid_ones(
    no_cuda: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="quick.*full"):
        setup(seed=0, profile="medium", verbose=False)
    monkeypatch.setenv(PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match=r"'fast'.*quick.*full"):
        setup(seed=0, verbose=False)


def test_setup_seeds_torch_numpy_and_python(no_cuda: None) -> None:
    def draw() -> tuple[torch.Tensor, np.ndarray, float]:
        return torch.randn(8), np.random.rand(8), random.random()

    setup(seed=3, verbose=False)
    first = draw()
    setup(seed=3, verbose=False)
    again = draw()
    setup(seed=4, verbose=False)
    other = draw()
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]
    assert not torch.equal(first[0], other[0])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_raises(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        reslib.seed_everything(seed)  # type: ignore[arg-type]


def test_setup_flushes_denormals_on_the_cpu(no_cuda: None) -> None:
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals (no SSE3)")
    subnormal = torch.tensor([1e-40]) * 1  # 1e-40 is below float32's smallest normal, 1.2e-38
    assert subnormal.item() != 0.0, "with flushing off, a subnormal float survives"
    setup(seed=0, verbose=False)
    assert (torch.tensor([1e-40]) * 1).item() == 0.0


def test_provenance_names_versions_device_profile_and_seed(
    no_cuda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = setup(seed=7)
    printed = capsys.readouterr().out
    line = reslib.provenance()
    for part in (
        f"reslib {reslib.__version__}",
        f"torch {torch.__version__}",
        "cpu",
        "profile=quick",
        "seed=7",
    ):
        assert part in line
        assert part in printed  # setup() prints the same line
    assert "\n" not in line and run.seed == 7


def test_active_without_setup_is_unseeded(no_cuda: None) -> None:
    reslib.profiles._active = None  # the autouse fixture restores the previous value
    run = reslib.active()
    assert run.seed is None
    assert "seed=unset" in run.provenance()


def test_by_profile_picks_by_the_active_profile(no_cuda: None) -> None:
    setup(seed=0, profile="quick", verbose=False)
    assert by_profile(quick=dict(depth=8), full=dict(depth=56)) == {"depth": 8}
    setup(seed=0, profile="full", verbose=False)
    assert by_profile(quick=dict(depth=8), full=dict(depth=56)) == {"depth": 56}


def test_claim_prints_a_check_mark(capsys: pytest.CaptureFixture[str]) -> None:
    claim("deeper plain nets train worse", True, detail="loss 0.9 vs 0.4")
    out = capsys.readouterr().out
    assert out.startswith("✓ [finding] deeper plain nets train worse")
    assert "loss 0.9 vs 0.4" in out


def test_false_claim_raises_with_the_description(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ClaimError, match="residual beats plain") as info:
        claim("residual beats plain", False, detail="0.5 vs 0.4")
    assert "0.5 vs 0.4" in str(info.value)
    assert isinstance(info.value, AssertionError)  # pytest/nbval report it as a failed check
    assert "✓" not in capsys.readouterr().out


def test_claim_accepts_numpy_and_zero_d_tensors(capsys: pytest.CaptureFixture[str]) -> None:
    claim("tensor holds", torch.tensor(2.0) > 1)
    claim("one-element tensor holds", torch.tensor([True]))
    claim("numpy holds", np.float64(2.0) > 1)
    assert capsys.readouterr().out.count("✓") == 3
    with pytest.raises(ClaimError):
        claim("tensor fails", torch.tensor(0.5) > 1)
    with pytest.raises(ClaimError):
        claim("numpy fails", np.float64(0.5) > 1)


def test_claim_rejects_a_multi_element_tensor() -> None:
    with pytest.raises(ValueError, match=r"single boolean.*\(3,\)"):
        claim("all positive", torch.tensor([1.0, 2.0, 3.0]) > 0)


@pytest.mark.parametrize(
    "condition",
    [
        (x for x in []),  # a generator: truthy
        lambda: False,
        [False],
        "False",
        math.nan,
        1,
        torch.tensor(0.5),  # a float tensor, not a comparison
        np.float64(0.0),
        None,
    ],
    ids=["generator", "lambda", "list", "str", "nan", "int", "float-tensor", "np-float", "None"],
)
def test_claim_accepts_only_real_booleans(condition: object) -> None:
    with pytest.raises(TypeError, match=r"condition must be a boolean"):
        claim("something holds", condition)  # type: ignore[arg-type]


def test_claim_rejects_a_multi_element_numpy_array() -> None:
    with pytest.raises(ValueError, match=r"single boolean.*\(2,\)"):
        claim("all positive", np.array([1.0, 2.0]) > 0)
    claim("one-element numpy array holds", np.array([True]))


def test_claim_kinds_are_printed_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    setup(seed=0, profile="quick", verbose=False)
    assert reslib.profiles.claim_counts() == {"check": 0, "finding": 0}  # setup resets
    claim("zero-init gives the identity", True, kind="check")
    claim("deeper plain nets train worse", True)
    claim("residual beats plain", np.bool_(True), kind="finding")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "✓ [check] zero-init gives the identity",
        "✓ [finding] deeper plain nets train worse",
        "✓ [finding] residual beats plain",
    ]
    assert reslib.profiles.claim_counts() == {"check": 1, "finding": 2}
    setup(seed=0, profile="quick", verbose=False)
    assert reslib.profiles.claim_counts() == {"check": 0, "finding": 0}
    with pytest.raises(ValueError, match=r"kind.*check.*finding"):
        claim("x", True, kind="result")  # type: ignore[arg-type]


def test_failed_finding_in_the_full_profile_prints_and_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup(seed=0, profile="full", verbose=False)
    claim("deeper plain nets train worse", False, detail="loss 0.4 vs 0.5")
    out = capsys.readouterr().out
    assert out.startswith("✗ [finding]") and "loss 0.4 vs 0.5" in out
    with pytest.raises(ClaimError, match=r"\[check\].*counts match"):
        claim("counts match", False, kind="check")  # a check raises in every profile
    setup(seed=0, profile="quick", verbose=False)
    with pytest.raises(ClaimError, match=r"\[finding\].*deeper"):
        claim("deeper plain nets train worse", False)  # CI runs the quick profile
    assert reslib.profiles.claim_counts() == {"check": 0, "finding": 1}


@pytest.mark.parametrize("seed", [2**32, -1, 1.0, True, None])
def test_setup_rejects_a_bad_seed_before_seeding_anything(seed: object) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    state = random.getstate()
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*32\)"):
        setup(seed=seed, verbose=False)  # type: ignore[arg-type]
    assert torch.equal(torch.rand(3), expected)  # torch's generator was not reseeded
    assert random.getstate() == state


def test_seed_at_the_top_of_the_range_works() -> None:
    setup(seed=2**32 - 1, verbose=False)


def test_quick_profile_runs_on_one_thread_on_the_cpu_and_leaves_gpu_threads_alone() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run = reslib.setup(seed=0, profile="quick", verbose=False)
        # asserts on whichever device this machine has
        expected = 1 if run.device.type == "cpu" else 2
        assert torch.get_num_threads() == expected
        assert f"threads={expected}" in run.provenance()
    finally:
        torch.set_num_threads(before)


def test_reslib_seed_overrides_the_seed_of_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESLIB_SEED", "3")
    run = reslib.setup(seed=0, profile="quick", verbose=False)
    assert run.seed == 3
    first = torch.rand(4)
    reslib.seed_everything(3)
    assert torch.equal(torch.rand(4), first)  # setup seeded with 3, not 0


@pytest.mark.parametrize("value", ["-1", "2.5", "many", str(2**32)])
def test_a_bad_reslib_seed_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RESLIB_SEED", value)
    with pytest.raises(ValueError, match="RESLIB_SEED"):
        reslib.setup(seed=0, profile="quick", verbose=False)


def test_a_claim_line_is_a_badge_in_html_and_the_plain_line_in_text() -> None:
    from reslib.profiles import ClaimLine

    line = ClaimLine("✓", "finding", "deeper <plain> nets train worse", "0.9 vs 0.4")
    assert str(line) == "✓ [finding] deeper <plain> nets train worse  (0.9 vs 0.4)"
    html = line._repr_html_()
    assert "✓ finding</span>" in html and "&lt;plain&gt;" in html and "(0.9 vs 0.4)" in html
    assert "overflow-wrap:anywhere" in html  # wraps inside the page
    assert "#c0392b" in ClaimLine("✗", "finding", "x")._repr_html_()  # a failure shows red
