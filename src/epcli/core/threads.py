"""CPU thread count of a run (``--threads``): torch, and the BLAS/OpenMP pools of numpy and
scikit-learn."""

from __future__ import annotations

import os

from epcli.core.errors import UsageError

#: Environment variables read by OpenMP / BLAS libraries (set for child processes too).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def set_threads(n: int) -> None:
    """Use at most ``n`` CPU threads for compute in this process.

    Sets ``torch.set_num_threads(n)`` (intra-op; inter-op too when torch has not started its
    pool yet), limits the BLAS/OpenMP pools loaded so far (threadpoolctl, which
    scikit-learn installs), and exports :data:`THREAD_ENV` for libraries loaded later.

    Raises
    ------
    UsageError
        When ``n < 1``.
    """
    if n < 1:
        raise UsageError(f"--threads must be >= 1, got {n}")
    for name in THREAD_ENV:
        os.environ[name] = str(n)
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # only allowed before torch's first parallel work
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return
    threadpool_limits(limits=n)
