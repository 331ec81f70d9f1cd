"""The ground floor: what every model family shares, and nothing family-specific.

* :mod:`~reslib.layers.blocks` - the block protocol (``residual``, ``shortcut``, ``pre``,
  ``post``; ``paths``, ``skip_path``, ``zero_init_last``) and :func:`named_blocks`;
* :mod:`~reslib.layers.shortcuts` - identity, option A, projections, scaling, gates, detached,
  the plain twin's zero;
* :mod:`~reslib.layers.norms` and :mod:`~reslib.layers.activations` - one table each, one
  meaning per name;
* :mod:`~reslib.layers.init` - initialisers (He, zero-init, Fixup); :mod:`~reslib.layers.drop` -
  DropPath, DropBranch and the linear decay rule; :mod:`~reslib.layers.checkpointing` -
  checkpointed segments;
* :mod:`~reslib.layers.checks` - the input checks every builder uses;
* :mod:`~reslib.layers.dims` - conv/norm/pool classes by number of spatial dimensions.

Import rules (held by ``tests/test_layout.py``, which reads every module's imports):

1. The ground floor imports nothing else from reslib.
2. A model family (``reslib/models/<family>.py``) imports the ground floor and
   ``reslib.models.base`` only; no family imports another. Loading torchvision weights lives in
   its own module, ``reslib.models.torchvision_weights``.
3. The diagnostics never import a model family, and the trainer imports no model family: both
   work on any ``nn.Module`` (the diagnostics through the block protocol).
4. Nothing inside the package imports ``reslib`` itself (its ``__init__``): modules import the
   submodules they use, so there are no import cycles.
"""

from reslib.layers.activations import ACTIVATIONS, Activation, make_activation
from reslib.layers.blocks import (
    Block,
    ConcatBlock,
    GatedBlock,
    LearnedScale,
    ResidualBlock,
    blocks,
    named_blocks,
)
from reslib.layers.checkpointing import CheckpointedSequential, buffers_kept
from reslib.layers.checks import check_choice, check_float, check_int
from reslib.layers.dims import conv_layer, global_pool
from reslib.layers.drop import DropBranch, DropPath, linear_decay
from reslib.layers.init import (
    INITS,
    Init,
    fixup_init_,
    fixup_scale,
    init_weights,
    zero_last_layer_,
)
from reslib.layers.norms import NORMS, Norm, group_count, make_norm
from reslib.layers.shortcuts import (
    SHORTCUTS,
    SKIPS,
    ChannelMask,
    Detached,
    Gate,
    GatedPath,
    PadShortcut,
    Projection,
    Scale,
    Shortcut,
    Skip,
    Zero,
    make_shortcut,
)

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "NORMS",
    "SHORTCUTS",
    "SKIPS",
    "Activation",
    "Block",
    "ChannelMask",
    "CheckpointedSequential",
    "ConcatBlock",
    "Detached",
    "DropBranch",
    "DropPath",
    "Gate",
    "GatedBlock",
    "GatedPath",
    "Init",
    "LearnedScale",
    "Norm",
    "PadShortcut",
    "Projection",
    "ResidualBlock",
    "Scale",
    "Shortcut",
    "Skip",
    "Zero",
    "blocks",
    "buffers_kept",
    "check_choice",
    "check_float",
    "check_int",
    "conv_layer",
    "fixup_init_",
    "fixup_scale",
    "global_pool",
    "group_count",
    "init_weights",
    "linear_decay",
    "make_activation",
    "make_norm",
    "make_shortcut",
    "named_blocks",
    "zero_last_layer_",
]
