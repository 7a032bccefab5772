"""The NumPy fast path: an optimisation of the plain path, never a second copy of the math.

* :mod:`~handgrad.fast.blas` -- NumPy's own BLAS routines it does not expose (axpy, ger)
  and the undispatched ``dot``/``vdot``; ``USE_BLAS`` turns them off.
* :mod:`~handgrad.fast.workspace` -- a layer's reused buffers for one batch shape.
* :mod:`~handgrad.fast.kernels` -- ``KERNELS``, keyed by layer type: each binds a layer's
  forward and backward to its workspace.
* :mod:`~handgrad.fast.losses` -- the fused loss kernels (gradient into a buffer).
* :mod:`~handgrad.fast.update` -- SGD's in-place update.
* :mod:`~handgrad.fast.plan` -- ``Plan``: all of the above for one network and input shape.

The plain layer classes do not import this package; ``Sequential`` uses it when its
``fast_path`` is on (the default) and the input is a NumPy array of the network's dtype.
"""

from __future__ import annotations

from .kernels import KERNELS, FastOp, kernels_for
from .plan import Plan
from .workspace import NotFastError, StalePlanError, Workspace

__all__ = ["KERNELS", "FastOp", "NotFastError", "Plan", "StalePlanError", "Workspace", "kernels_for"]
