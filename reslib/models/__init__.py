"""Model families. Each module holds one family and its plain (skip-free) twin."""

from reslib.models import plain, preact, resnet

__all__ = ["plain", "preact", "resnet"]
