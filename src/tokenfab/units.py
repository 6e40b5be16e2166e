"""Units shared by every layer (imports nothing of tokenfab)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np

MILLI_PER_GPU = 1000
"""milli-GPU in one GPU: the unit of GPU shares. A request for a share f of a GPU holds ``round(1000 f)``
milli-GPU; quotas, the scheduler's shared GPUs, the control plane's share rows and the openb traces'
``gpu_milli`` all count in it."""

Floats: TypeAlias = "float | np.ndarray"
"""A scalar or an array of them (element-wise formulas take either), in the unit the name says."""
