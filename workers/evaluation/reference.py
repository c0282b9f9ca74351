"""The best product-state energy of a Hamiltonian: the reference that the seed reward's error is measured against.

A product state ``|psi_1> (x) ... (x) |psi_n>`` with Bloch vectors ``r_i`` has ``<P> = prod_i r_i[P_i]`` for a Pauli
string P, so ``E(r) = sum_P c_P prod_i r_i[P_i]``. Every such state is preparable by one layer of single-qubit
rotations, and every computational basis state is one (the Hartree-Fock determinant of a molecule under the
Jordan-Wigner mapping is the basis state with the lowest diagonal energy among those of the right electron count).

``product_state_energy`` returns the lowest energy found over: every computational basis state (exhaustive up to
``BASIS_LIMIT`` states: the exact minimum of the diagonal), then L-BFGS-B over the Bloch angles with analytic
gradients, started from that best basis state and from ``restarts`` random product states. It is an upper bound on
the true product-state minimum (a local search), a lower bound on the HF energy, and cached per Hamiltonian.
"""

from __future__ import annotations

import hashlib

import numpy as np
from qiskit.quantum_info import SparsePauliOp
from scipy.optimize import minimize

BASIS_LIMIT = 1 << 16
"""Enumerate every basis state up to this many (16 qubits); above, the local search alone."""


def _codes(op: SparsePauliOp) -> np.ndarray:
    """Per term and qubit: 0 = I, 1 = X, 2 = Y, 3 = Z."""
    x, z = op.paulis.x, op.paulis.z
    return np.where(x & z, 2, np.where(x, 1, np.where(z, 3, 0)))


def _energy_and_gradient(angles: np.ndarray, codes: np.ndarray, coeffs: np.ndarray) -> tuple[float, np.ndarray]:
    n = codes.shape[1]
    theta, phi = angles[:n], angles[n:]
    st, ct, sp, cp = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    bloch = np.stack([np.ones(n), st * cp, st * sp, ct], axis=1)  # (n, 4)
    d_theta = np.stack([np.zeros(n), ct * cp, ct * sp, -st], axis=1)
    d_phi = np.stack([np.zeros(n), -st * sp, st * cp, np.zeros(n)], axis=1)
    cols = np.arange(n)
    factors = bloch[cols, codes]  # (T, n)
    ones = np.ones((len(coeffs), 1))
    prefix = np.cumprod(np.hstack([ones, factors]), axis=1)[:, :n]  # product over qubits j < i
    suffix = np.cumprod(np.hstack([ones, factors[:, ::-1]]), axis=1)[:, :n][:, ::-1]  # over qubits j > i
    others = prefix * suffix  # product over the other qubits
    energy = float(coeffs @ (others[:, 0] * factors[:, 0]))
    grad_theta = coeffs @ (others * d_theta[cols, codes])
    grad_phi = coeffs @ (others * d_phi[cols, codes])
    return energy, np.concatenate([grad_theta, grad_phi])


def _best_basis_state(codes: np.ndarray, coeffs: np.ndarray) -> tuple[float, np.ndarray] | None:
    n = codes.shape[1]
    if 2 ** n > BASIS_LIMIT:
        return None
    diagonal = np.all((codes == 0) | (codes == 3), axis=1)
    states = ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1).astype(float)  # qubit 0 = bit 0
    signs = 1.0 - 2.0 * states  # <Z_i> = +1 for |0>, -1 for |1>
    z = codes[diagonal] == 3
    energies = np.zeros(2 ** n)
    for c, mask in zip(coeffs[diagonal], z):
        energies += c * np.prod(signs[:, mask], axis=1)
    best = int(np.argmin(energies))
    return float(energies[best]), states[best]


def product_state_energy(hamiltonian: SparsePauliOp, *, restarts: int = 8, seed: int = 0) -> float:
    """The lowest product-state energy found (see the module docstring); cached by the Hamiltonian's content."""
    op = hamiltonian.simplify(atol=0)
    digest = hashlib.sha256(op.paulis.x.tobytes() + op.paulis.z.tobytes()
                            + np.ascontiguousarray(op.coeffs).tobytes()).hexdigest()
    return _cached(digest, op, restarts, seed)


_CACHE: dict[tuple[str, int, int], float] = {}
"""(Hamiltonian content hash, restarts, seed) -> energy; a few hundred goals at most per process."""


def _cached(digest: str, op: SparsePauliOp, restarts: int, seed: int) -> float:
    key = (digest, restarts, seed)
    if key not in _CACHE:
        _CACHE[key] = _search(op, restarts, seed)
    return _CACHE[key]


def _search(op: SparsePauliOp, restarts: int, seed: int) -> float:
    codes, coeffs = _codes(op), np.real(op.coeffs).astype(float)
    n = op.num_qubits
    rng = np.random.default_rng(seed)
    starts = [np.concatenate([rng.uniform(0, np.pi, n), rng.uniform(0, 2 * np.pi, n)]) for _ in range(restarts)]
    best = np.inf
    basis = _best_basis_state(codes, coeffs)
    if basis is not None:
        best = basis[0]
        # a basis state is a stationary point; nudge it so the search can leave it downhill
        nudged = np.pi * basis[1] + 0.05 * rng.standard_normal(n)
        starts.insert(0, np.concatenate([nudged, rng.uniform(0, 2 * np.pi, n)]))
    for x0 in starts:
        res = minimize(_energy_and_gradient, x0, args=(codes, coeffs), jac=True, method="L-BFGS-B",
                       options={"maxiter": 300, "gtol": 1e-9})
        best = min(best, float(res.fun))
    return best
