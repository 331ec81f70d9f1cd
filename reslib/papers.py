"""The papers' numbers that the chapters compare against, written down once.

Each table is plain data with its source; chapters print it next to their own measurements and
the docstrings of the builders quote it. Errors are CIFAR-10 test error in percent.
"""

from __future__ import annotations

from typing import NamedTuple


class ParamsAndError(NamedTuple):
    params: str  # as the paper prints it, e.g. "0.27M"
    error: float


# He, Zhang, Ren, Sun 2016, "Deep Residual Learning for Image Recognition" (arXiv 1512.03385),
# Table 6: CIFAR-10 ResNets with option A shortcuts (110 layers: best of 5 runs; mean 6.61).
HE2016_TABLE6: dict[int, ParamsAndError] = {
    20: ParamsAndError("0.27M", 8.75),
    32: ParamsAndError("0.46M", 7.51),
    44: ParamsAndError("0.66M", 7.17),
    56: ParamsAndError("0.85M", 6.97),
    110: ParamsAndError("1.7M", 6.43),
    1202: ParamsAndError("19.4M", 7.93),
}

# He, Zhang, Ren, Sun 2016b, "Identity Mappings in Deep Residual Networks" (arXiv 1603.05027).
# Table 1: ResNet-110 with the original unit and other shortcuts; None = "fail" (above 20%).
HE2016B_TABLE1: dict[str, float | None] = {
    "identity (original)": 6.61,
    "scaling 0.5, both paths": 12.35,
    "scaling 0.5, shortcut only": None,
    "exclusive gating, b=-6": 8.70,
    "shortcut-only gating, b=0": 12.86,
    "shortcut-only gating, b=-6": 6.91,
    "1x1 conv shortcut": 12.22,
    "dropout 0.5 on shortcut": None,
}
# Table 2: where BN and ReLU sit, (ResNet-110, ResNet-164).
HE2016B_TABLE2: dict[str, tuple[float, float]] = {
    "original": (6.61, 5.93),
    "BN after addition": (8.17, 6.50),
    "ReLU before addition": (7.84, 6.14),
    "ReLU-only pre-activation": (6.71, 5.91),
    "full pre-activation": (6.37, 5.46),
}
# Tables 3 and 4: parameters and error of the original -> full pre-activation nets.
HE2016B_TABLE3: dict[int, tuple[str, float, float]] = {
    110: ("1.7M", 6.61, 6.37),
    164: ("1.7M", 5.93, 5.46),
    1001: ("10.2M", 7.61, 4.92),
}
