"""Units shared by every layer (imports nothing of tokenfab)."""

MILLI_PER_GPU = 1000
"""milli-GPU in one GPU: the unit of GPU shares. A request for a share f of a GPU holds ``round(1000 f)``
milli-GPU; quotas, the scheduler's shared GPUs, the control plane's share rows and the openb traces'
``gpu_milli`` all count in it."""
