"""Model families, one module each, standing on the ground floor (:mod:`reslib.layers`).

No family imports another; torchvision weights load through :mod:`.torchvision_weights`.
"""

from reslib.models import (
    base,
    densenet,
    graph,
    highway,
    mobilenet,
    plain,
    preact,
    resnet,
    torchvision_weights,
    transformer,
    unet,
)

__all__ = [
    "base",
    "densenet",
    "graph",
    "highway",
    "mobilenet",
    "plain",
    "preact",
    "resnet",
    "torchvision_weights",
    "transformer",
    "unet",
]
