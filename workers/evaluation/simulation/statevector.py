"""The fast engine: a batched statevector simulator with adjoint (reverse-mode) differentiation.

States are arrays of shape (B, 2**n), one row per parameter vector (Qiskit's little-endian order). Three kernels do
the work behind one interface (``energies(phis)``, ``adjoint(phis)``):

- ``compiled`` (``compiled.py``, ``jit.py``): the program as a tape walked by numba kernels, one call per batch;
  the default whenever numba is installed.
- ``dense`` (``dense.py``): fused dense segments and grouped diagonal rotations, for few qubits.
- ``numpy`` (``block.py``): numpy block kernels gate by gate, the fallback without numba.

Gradients (Jones & Gacon 2020, "Efficient calculation of gradients in classical simulations of variational quantum
algorithms", arXiv:2009.02823): after the forward pass psi_N = U_N ... U_1 |0>, set lambda = H psi_N and walk the
program backwards. For a rotation U_j = exp(-i phi_j/2 P_j), ``dE/dphi_j = 2 Re <lambda_j| dU_j/dphi_j psi_{j-1}> =
Im <lambda_j| P_j |psi_j>``; then undo U_j on both states. We carry mu = conj(lambda) (evolved with U^T) so every
inner product is a plain batched dot without a conjugated copy. Cost: about three forward passes for all
gradients, independent of the number of parameters. The chain rule ``dE/dtheta = A^T dE/dphi`` is one matmul.
"""


from __future__ import annotations

import numpy as np
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError
from .block import BlockKernel
from .dense import DenseKernel
from .program import Program

try:  # numba is a core dependency; without it (a trimmed install) the numpy kernel takes over
    from .compiled import CompiledKernel
except ImportError:  # pragma: no cover - exercised only where numba is missing
    CompiledKernel = None

MAX_QUBITS = 22
KERNELS = ("auto", "compiled", "dense", "numpy")
CHUNK_ELEMENTS = 2**15
"""Amplitudes per chunk of the batch (rows x 2**n); about 512 KiB of complex128 keeps each pass in cache."""
DENSE_ALWAYS_QUBITS = 6
"""Without numba: up to this many qubits every batch uses ``dense.DenseKernel`` (fused segments, grouped
rotations)."""
DENSE_MAX_QUBITS = 8
"""Without numba: up to this many qubits small batches (at most ``DENSE_MAX_ROWS`` rows) use it too; larger ones
go gate by gate (measured on one core: at 8 qubits a fused 256 x 256 matrix costs about as much as the gates it
replaces once 16 rows share it)."""
DENSE_MAX_ROWS = 8


class StatevectorEngine:
    """Energies and exact gradients of ``<0|U(theta)^dag H U(theta)|0>`` for batches of parameter vectors.

    ``kernel``: ``auto`` (compiled; without numba, dense for few qubits and numpy otherwise), or one by name. The
    compiled kernel was 2-8x faster than the dense one at every size from 4 to 10 qubits at batches of 1 and 4
    (docs/scoring.md), so the dense kernel serves only the numpy fallback.
    """

    name = "statevector"

    def __init__(self, program: Program, hamiltonian: SparsePauliOp, *, chunk_elements: int = CHUNK_ELEMENTS,
                 kernel: str = "auto"):
        n = program.num_qubits
        if n > MAX_QUBITS:
            raise EvaluationError(f"the statevector engine simulates at most {MAX_QUBITS} qubits, got {n}")
        if hamiltonian.num_qubits != n:
            raise EvaluationError(f"Hamiltonian has {hamiltonian.num_qubits} qubits, circuit has {n}")
        if kernel not in KERNELS:
            raise EvaluationError(f"unknown statevector kernel '{kernel}'; choose one of {', '.join(KERNELS)}")
        if kernel == "compiled" and CompiledKernel is None:
            raise EvaluationError("the compiled kernel needs numba, which is not installed")
        self.program, self.n, self.kernel = program, n, kernel
        self.dim = 2**n
        self.chunk_rows = max(1, chunk_elements // self.dim)
        self.hamiltonian = hamiltonian.to_matrix(sparse=True).tocsr()
        if kernel == "auto":
            kernel = "compiled" if CompiledKernel is not None else "numpy"
        self._dense = None
        if kernel == "dense" or (kernel == "numpy" and n <= DENSE_MAX_QUBITS):
            self._dense = DenseKernel(program, hamiltonian)
        self._gates = None
        if kernel != "dense":
            self._gates = (CompiledKernel if kernel == "compiled" else BlockKernel)(program, self.hamiltonian)
        self.executions = 0
        """Parameter vectors simulated so far (forward passes; a gradient adds one backward pass each)."""

    # ---- public ----------------------------------------------------------------------------------------------
    def energies(self, thetas: np.ndarray) -> np.ndarray:
        """E(theta) for each row of ``thetas`` (B, num_parameters) -> (B,)."""
        phis = self.program.angles(thetas)
        out = np.empty(phis.shape[0])
        for lo in range(0, phis.shape[0], self.chunk_rows):
            chunk = phis[lo:lo + self.chunk_rows]
            self.executions += chunk.shape[0]
            out[lo:lo + chunk.shape[0]] = self._kernel(chunk.shape[0]).energies(chunk)
        return out

    def energies_and_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(E (B,), dE/dtheta (B, num_parameters)) for each row of ``thetas``."""
        energy, grad_phi = self.angle_gradients(thetas)
        return energy, self.program.chain(grad_phi)

    def angle_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(E, dE/dphi) per rotation occurrence, before the chain rule (for cross-checks)."""
        return self._adjoint(self.program.angles(thetas))

    # ---- internals -------------------------------------------------------------------------------------------
    def _kernel(self, rows: int):
        """The dense kernel for few qubits or small batches on up to ``DENSE_MAX_QUBITS`` qubits, else the gates."""
        if self._dense is not None and (self._gates is None or self.n <= DENSE_ALWAYS_QUBITS
                                        or rows <= DENSE_MAX_ROWS):
            return self._dense
        return self._gates

    def _adjoint(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = phis.shape[0]
        if rows <= self.chunk_rows:
            self.executions += rows
            return self._kernel(rows).adjoint(phis)
        energy, grads = np.empty(rows), np.empty((rows, self.program.num_angles))
        for lo in range(0, rows, self.chunk_rows):
            chunk = phis[lo:lo + self.chunk_rows]
            self.executions += chunk.shape[0]
            energy[lo:lo + chunk.shape[0]], grads[lo:lo + chunk.shape[0]] = self._kernel(chunk.shape[0]).adjoint(chunk)
        return energy, grads
