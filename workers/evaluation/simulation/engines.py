"""Exact energies and gradients of an ansatz: one small protocol, two engines.

- ``statevector`` (default): ``statevector.StatevectorEngine``, a batched statevector simulator (compiled numba
  kernels; numpy without numba) with adjoint differentiation; all gradients for about three forward passes.
- ``aer``: ``aer.AerEngine``, qiskit-aer's ``EstimatorV2`` (exact, ``default_precision=0``) with parameter
  shifts per gate occurrence, one Estimator call per batch of gradients through parameter broadcasting.

Both run the same compiled ``program.Program`` and agree to ~1e-12 (tests/test_simulator.py); the statevector
engine is the default because it is faster on every workload we measured (docs/scoring.md). ``engine="auto"``
picks the default.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Protocol

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError
from .program import Program, compile_circuit

ENGINES: tuple[str, ...] = ("statevector", "aer")
DEFAULT_ENGINE = "statevector"
BLAS_THREADS_ENV = "QMIND_BLAS_THREADS"
"""BLAS threads while scoring (default 1: a worker scores one candidate per core; 0 leaves BLAS alone)."""


@contextlib.contextmanager
def blas_threads(limit: int | None = None) -> Iterator[None]:
    """Limit BLAS threads for the duration (small matmuls lose badly to thread start-up on a busy machine)."""
    if limit is None:
        limit = int(os.environ.get(BLAS_THREADS_ENV, "1"))
    if limit <= 0:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its own default
        yield
        return
    with threadpool_limits(limits=limit, user_api="blas"):
        yield


class Engine(Protocol):
    """What the barren-plateau check and VQE need from a simulator."""

    name: str
    program: Program
    executions: int

    def energies(self, thetas: np.ndarray) -> np.ndarray:
        """(B, num_parameters) -> (B,) exact energies."""

    def energies_and_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, num_parameters) -> (energies (B,), dE/dtheta (B, num_parameters))."""

    def angle_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, num_parameters) -> (energies (B,), dE/dphi (B, num_angles)) per rotation occurrence."""


def resolve_engine(engine: str | None) -> str:
    """``auto``/None -> the default engine; otherwise the name, validated."""
    name = (engine or "auto").strip().lower()
    if name == "auto":
        return DEFAULT_ENGINE
    if name not in ENGINES:
        raise EvaluationError(f"unknown engine '{engine}'; choose one of auto, {', '.join(ENGINES)}")
    return name


def make_engine(circuit: QuantumCircuit | Program, hamiltonian: SparsePauliOp, *, engine: str | None = "auto",
                **options) -> Engine:
    """An engine for ``circuit`` (compiled here unless already a ``Program``) and ``hamiltonian``."""
    program = circuit if isinstance(circuit, Program) else compile_circuit(circuit)
    name = resolve_engine(engine)
    if name == "aer":
        from .aer import AerEngine

        return AerEngine(program, hamiltonian, **options)
    from .statevector import StatevectorEngine

    return StatevectorEngine(program, hamiltonian, **options)
