"""Loading torchvision's pretrained weights into reslib's models.

Each family's key names differ from torchvision's only by an explicit renaming table, so a
loaded model computes what torchvision's does (the unit tests compare their outputs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

# torchvision ResNet name -> reslib name, for the parts that differ (suffixes such as .weight
# and .running_mean carry over unchanged). Stage indices are shifted by one (layer1 -> 0).
RESNET_KEYS: tuple[tuple[str, str], ...] = (
    (r"^conv1\.", "stem.conv."),
    (r"^bn1\.", "stem.bn."),
    (r"^layer(\d+)\.(\d+)\.(conv\d|bn\d)\.", "stages.{0}.{1}.residual.{2}."),
    (r"^layer(\d+)\.(\d+)\.downsample\.0\.", "stages.{0}.{1}.shortcut.conv."),
    (r"^layer(\d+)\.(\d+)\.downsample\.1\.", "stages.{0}.{1}.shortcut.bn."),
    (r"^fc\.", "head.fc."),
)


def resnet_key(key: str) -> str:
    """The reslib name of a torchvision ResNet state-dict entry (``layer2.0.downsample.0.weight``
    -> ``stages.1.0.shortcut.conv.weight``).

    Raises:
        ValueError: ``key`` is not part of a torchvision ResNet.
    """
    for pattern, target in RESNET_KEYS:
        m = re.match(pattern, key)
        if m:
            groups = list(m.groups())
            if groups:
                groups[0] = str(int(groups[0]) - 1)  # torchvision counts stages from layer1
            return target.format(*groups) + key[m.end() :]
    raise ValueError(f"{key!r} is not a torchvision ResNet state-dict key")


def load_renamed(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], rename: dict[str, str], hint: str
) -> nn.Module:
    """Load ``state_dict`` under the names ``rename`` maps its keys to, strictly.

    Raises:
        ValueError: keys missing, left over or of the wrong shape (the message lists them and
            ends with ``hint``).
    """
    mapped = {rename[k]: v for k, v in state_dict.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    wrong = sorted(
        f"{k}: {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(mapped)
        if mapped[k].shape != own[k].shape
    )
    if missing or unexpected or wrong:

        def some(names: list[str]) -> str:
            return f"{names[:5]}{'...' if len(names) > 5 else ''}"

        raise ValueError(
            f"the state dict does not fit this model ({hint}): missing {some(missing)}, "
            f"unexpected {some(unexpected)}, wrong shape {some(wrong)}"
        )
    model.load_state_dict(mapped, strict=True)
    return model


def load_resnet(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load a torchvision ``resnet18..152`` state dict into a reslib ResNet built by
    :func:`reslib.models.resnet.imagenet_resnet` with option B; returns ``model``.

    Raises:
        ValueError: not a torchvision ResNet state dict, or one of another depth or head.
    """
    rename = {k: resnet_key(k) for k in state_dict}
    hint = "is it the same depth and number of classes, with shortcut='B'?"
    return load_renamed(model, state_dict, rename, hint)


# torchvision DenseNet name -> reslib name. Dense blocks, layers and transitions count from 1
# in torchvision and from 0 here; a stage holds a block and, except the last, its transition.
DENSENET_KEYS: tuple[tuple[str, str], ...] = (
    (r"^features\.conv0\.", "stem.conv."),
    (r"^features\.norm0\.", "stem.norm."),
    (
        r"^features\.denseblock(\d+)\.denselayer(\d+)\.(norm|conv)([12])\.",
        "stages.{0}.block.{1}.residual.{2}{3}.",
    ),
    (r"^features\.transition(\d+)\.(norm|conv)\.", "stages.{0}.transition.{1}."),
    (r"^features\.norm5\.", "head.norm."),
    (r"^classifier\.", "head.fc."),
)
# torchvision's first DenseNet checkpoints named a layer's parts "norm.1", "conv.2", ...:
# '.' is no longer allowed in module names, and torchvision renames them on load, as we do
OLD_DENSE_LAYER = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.)")


def densenet_key(key: str) -> str:
    """The reslib name of a torchvision DenseNet state-dict entry, old-style names included
    (``features.denseblock2.denselayer3.norm.1.weight`` -> ``stages.1.block.2.residual.norm1.
    weight``).

    Raises:
        ValueError: ``key`` is not part of a torchvision DenseNet.
    """
    key = OLD_DENSE_LAYER.sub(r"\1\2", key)
    for pattern, target in DENSENET_KEYS:
        m = re.match(pattern, key)
        if m:
            groups = [
                str(int(g) - 1) if g.isdigit() and i < 2 else g for i, g in enumerate(m.groups())
            ]
            return target.format(*groups) + key[m.end() :]
    raise ValueError(f"{key!r} is not a torchvision DenseNet state-dict key")


def load_densenet(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load a torchvision ``densenet121/161/169/201`` state dict (old-style ``norm.1`` key names
    included) into a reslib DenseNet built by :func:`reslib.models.densenet.imagenet_densenet`;
    returns ``model``. Works with ``memory_efficient`` either way (it changes no weights).

    Raises:
        ValueError: not a torchvision DenseNet state dict, or one of another depth or head.
    """
    rename = {k: densenet_key(k) for k in state_dict}
    hint = "is it the same depth and number of classes?"
    return load_renamed(model, state_dict, rename, hint)


# torchvision MobileNetV2 name -> reslib name. torchvision numbers its layers: features.0 is the
# stem, features.1..n the inverted residual blocks (their parts conv.0, conv.1, ... in order),
# features.n+1 the last 1x1 convolution; classifier.1 the linear layer.
MOBILENET_PARTS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("expand.conv", "expand.bn", "depthwise.conv", "depthwise.bn", "project.conv", "project.bn"),
    ("depthwise.conv", "depthwise.bn", "project.conv", "project.bn"),
)


def mobilenet_v2_key(key: str, expands: list[bool]) -> str:
    """The reslib name of a torchvision MobileNetV2 state-dict entry; ``expands[i]`` says
    whether block i has an expansion layer (t != 1): ``features.2.conv.1.0.weight`` ->
    ``blocks.1.residual.depthwise.conv.weight`` when block 1 expands.

    Raises:
        ValueError: ``key`` is not part of a torchvision MobileNetV2 of that many blocks.
    """
    last = len(expands) + 1
    m = re.match(r"^features\.(\d+)\.(?:conv\.(\d+)\.(?:(\d+)\.)?|([01])\.)", key)
    if m and m[4] is not None and int(m[1]) in (0, last):
        part = "conv" if m[4] == "0" else "bn"
        return f"{'stem' if m[1] == '0' else 'last'}.{part}." + key[m.end() :]
    if m and m[2] is not None and 1 <= int(m[1]) < last:
        block = int(m[1]) - 1
        parts = MOBILENET_PARTS[0 if expands[block] else 1]
        # conv.0 and conv.1 are conv-norm-act triples (their .0/.1); the projection is flat
        triples = (len(parts) - 2) // 2
        j = int(m[2])
        index = 2 * j + int(m[3]) if m[3] is not None else triples + j
        if (m[3] is None) == (j >= triples) and index < len(parts):
            return f"blocks.{block}.residual.{parts[index]}." + key[m.end() :]
    if key.startswith("classifier.1."):
        return "head.fc." + key[len("classifier.1.") :]
    raise ValueError(f"{key!r} is not a torchvision MobileNetV2 state-dict key")


def load_mobilenet_v2(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load a torchvision ``mobilenet_v2`` state dict into a reslib MobileNetV2 built by
    :func:`reslib.models.mobilenet.mobilenet_v2` with the same width and classes (and the
    default ``skip``, ``linear_bottleneck``); returns ``model``.

    Raises:
        ValueError: not a torchvision MobileNetV2 state dict, or one of another width or head.
    """
    own = model.state_dict()
    count = 1 + max((int(k.split(".")[1]) for k in own if k.startswith("blocks.")), default=-1)
    expands = [f"blocks.{i}.residual.expand.conv.weight" in own for i in range(count)]
    rename = {k: mobilenet_v2_key(k, expands) for k in state_dict}
    hint = "is it the same width_mult and number of classes?"
    return load_renamed(model, state_dict, rename, hint)
