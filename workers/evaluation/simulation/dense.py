"""Small-register kernel of the statevector engine: fused dense segments and diagonal rotation groups.

For few qubits (dim = 2**n <= 256) the cost of a gate-by-gate simulation is Python overhead, not arithmetic. This
kernel rewrites the program once as

    psi_final = M_K D_K M_{K-1} ... D_1 M_0 |0>,

where each D_g = exp(-i/2 sum_j phi_j z_j) is a *group* of consecutive, qubit-wise commuting Pauli rotations written
in the basis that diagonalises all of them at once (P_j = W_g Z_{S_j} W_g^dag, W_g a product of single-qubit H / SH),
and each M_g is one dense matrix fusing the fixed gates between two groups with the basis changes W_g^dag, W_{g+1}.
A layer of rzz or rx on every qubit is then one elementwise phase, and the adjoint gradient of all its angles is
one matmul: ``dE/dphi_j = Im sum_i mu_i z_j(i) psi_i`` (mu = conj(H psi) carried backwards, as in
``statevector.py``). States are rows: a column update psi <- A psi is ``psi_row @ A.T``.
"""

from __future__ import annotations

import numpy as np
from qiskit.quantum_info import SparsePauliOp

from .kernels import FixedKernel
from .program import FixedGate, Program, Rotation

_H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
_S = np.diag([1, 1j])


def _basis_change(frame: dict[int, str], inverse: bool) -> list[FixedGate]:
    """W = prod_q w_q with w_X = H, w_Y = S H (so w Z w^dag = X, Y); W^dag when ``inverse``."""
    gates = []
    for q, letter in sorted(frame.items()):
        if letter == "X":
            gates.append(FixedGate((q,), _H, None))
        elif letter == "Y":
            seq = [_H, _S] if not inverse else [_S.conj().T, _H]
            gates.extend(FixedGate((q,), m, None) for m in seq)
    return gates


def _commute(a: dict[int, str], b: dict[int, str]) -> bool:
    """Pauli strings (qubit -> letter) commute iff they differ on an even number of shared qubits."""
    return sum(1 for q, c in a.items() if q in b and b[q] != c) % 2 == 0


class _Slot:
    """A run of fixed gates, or a group of qubit-wise commuting rotations sharing one diagonalising frame."""

    def __init__(self, fixed: bool):
        self.fixed, self.ops, self.qubits, self.frame, self.paulis = fixed, [], set(), {}, []

    def add(self, op) -> None:
        self.ops.append(op)
        self.qubits.update(op.qubits)
        if not self.fixed:
            letters = dict(zip(op.qubits, op.paulis))
            self.frame.update(letters)
            self.paulis.append(letters)

    def passes(self, op) -> bool:
        """Can ``op`` move to before this slot (they commute)?"""
        if self.fixed or isinstance(op, FixedGate):
            return self.qubits.isdisjoint(op.qubits)
        letters = dict(zip(op.qubits, op.paulis))
        return all(_commute(letters, other) for other in self.paulis)

    def joins(self, op) -> bool:
        if self.fixed:
            return isinstance(op, FixedGate)
        if isinstance(op, FixedGate):
            return False
        return all(self.frame.get(q, c) == c for q, c in zip(op.qubits, op.paulis))


def _schedule(ops) -> list[_Slot]:
    """Slots in an order equivalent to ``ops``: each op moves back past slots it commutes with and joins the
    earliest compatible slot it can reach (a layer of ry then rz per qubit becomes one ry group and one rz group)."""
    slots: list[_Slot] = []
    for op in ops:
        reach = len(slots)
        while reach > 0 and slots[reach - 1].passes(op):
            reach -= 1
        # the blocking slot itself can take a fixed gate at its end; otherwise any compatible slot after it
        first = reach - 1 if reach > 0 and slots[reach - 1].fixed and isinstance(op, FixedGate) else reach
        target = next((s for s in slots[max(first, 0):] if s.joins(op)), None)
        if target is None:
            target = _Slot(isinstance(op, FixedGate))
            slots.append(target)
        target.add(op)
    return slots


class DenseKernel:
    """Forward and adjoint passes of a ``Program`` on n <= ~8 qubits (see the module docstring)."""

    def __init__(self, program: Program, hamiltonian: SparsePauliOp):
        self.n, self.dim = program.num_qubits, 2**program.num_qubits
        groups: list[tuple[list, list[Rotation], dict]] = []  # (fixed gates before, rotations, frame)
        pending: list = []
        for slot in _schedule(program.ops):
            if slot.fixed:
                pending.extend(slot.ops)
            else:
                groups.append((pending, slot.ops, slot.frame))
                pending = []
        tail = pending
        bits = np.arange(self.dim)
        self.indices, self.z = [], []
        for _, rotations, _ in groups:
            self.indices.append(np.array([r.index for r in rotations]))
            parity = np.zeros((len(rotations), self.dim), dtype=int)
            for row, rotation in enumerate(rotations):
                for q in rotation.qubits:
                    parity[row] ^= (bits >> q) & 1
            self.z.append(1.0 - 2.0 * parity)
        # row-form matrices R = M^T: psi_row <- psi_row @ R
        frames = [frame for _, _, frame in groups]
        mats = []
        for g in range(len(groups) + 1):
            gates = (_basis_change(frames[g - 1], inverse=False) if g > 0 else [])
            gates += groups[g][0] if g < len(groups) else tail
            gates += (_basis_change(frames[g], inverse=True) if g < len(groups) else [])
            mats.append(self._row_matrix(gates))
        self.start = mats[0][0].copy() if groups else np.eye(self.dim, dtype=complex)[0]
        self.forward_mats = mats[1:-1]  # one matrix per gap; the adjoint uses transposed views of it (no copies)
        last = mats[-1]  # H~ = M_K^dag H M_K, with M_K = last.T; mu_row = conj(psi_row) @ H~
        h = hamiltonian.to_matrix()
        self.h_tilde = last.conj() @ h @ last.T

    @property
    def num_groups(self) -> int:
        return len(self.z)

    def _row_matrix(self, gates: list) -> np.ndarray:
        t, o = np.eye(self.dim, dtype=complex), np.empty((self.dim, self.dim), dtype=complex)
        for gate in gates:
            kernel = FixedKernel(self.n, gate)
            if kernel.apply(t, o, kernel.fwd) is o:
                t, o = o, t
        return t

    def _phases(self, phis: np.ndarray) -> list[np.ndarray]:
        return [np.exp(-0.5j * (phis[:, idx] @ z)) for idx, z in zip(self.indices, self.z)]

    def _forward(self, phis: np.ndarray, phases: list[np.ndarray]) -> np.ndarray:
        psi = np.repeat(self.start[None, :], phis.shape[0], axis=0)
        for g, phase in enumerate(phases):
            psi *= phase
            if g < len(self.forward_mats):
                psi = psi @ self.forward_mats[g]
        return psi

    def energies(self, phis: np.ndarray) -> np.ndarray:
        psi = self._forward(phis, self._phases(phis))
        return np.einsum("bi,bi->b", psi.conj() @ self.h_tilde, psi).real

    def adjoint(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phases = self._phases(phis)
        psi = self._forward(phis, phases)
        mu = psi.conj() @ self.h_tilde
        energy = np.einsum("bi,bi->b", mu, psi).real
        grads = np.zeros((phis.shape[0], phis.shape[1]))
        for g in range(len(phases) - 1, -1, -1):
            grads[:, self.indices[g]] = (mu * psi).imag @ self.z[g].T
            psi *= phases[g].conj()
            mu *= phases[g]
            if g > 0:
                r = self.forward_mats[g - 1]
                psi = (psi.conj() @ r.T).conj()  # psi_row @ R^dag undoes R
                mu = mu @ r.T  # mu evolves with U^T
        return energy, grads
