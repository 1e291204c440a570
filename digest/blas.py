"""BLAS on one thread for small products: on two shared cores a second OpenBLAS thread waiting for a busy core
costs more than it saves (topic assignment: 90 ms instead of 30; recommend on 100,000 findings: 300 ms instead
of 30)."""

from __future__ import annotations

_CONTROLLER = None


def one_thread():
    """A context manager limiting BLAS to one thread."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
