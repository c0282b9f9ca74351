"""Lattice geometry (chains, two-leg ladders, square lattices) and the qubit Hamiltonians built on it.

Sites are numbered column by column: site ``(r, c)`` of a lattice with ``rows`` rows is ``c * rows + r``, so a lattice
with fewer columns is a prefix of a larger one of the same width. Boundaries:

- a *chain* wraps its last site to the first when periodic (rings need at least 3 sites);
- a *square lattice* ``rows x cols`` that is periodic is a torus: every site has four neighbours, so along a
  dimension of length 2 the wrap bond coincides with the inner one and that bond counts twice (coupling doubled);
- a *two-leg ladder* (``rows = 2``) has one rung per column that never wraps; periodic ladders wrap along the legs.

Fermions (Hubbard) map to qubits with Jordan-Wigner: spin-up orbital of site ``i`` on qubit ``i``, spin-down on
qubit ``L + i`` (``L`` sites), the same block order as the committed molecules. Qubit order in labels is Qiskit's
(qubit 0 is the rightmost character).
"""

from __future__ import annotations

import functools

from qiskit.quantum_info import SparsePauliOp

Bond = tuple[int, int]


def chain_bonds(n: int, periodic: bool, *, distance: int = 1) -> list[Bond]:
    """Bonds ``(i, i + distance)`` of a chain; periodic chains wrap (each bond once, rings of 3 sites or more)."""
    bonds = [(i, i + distance) for i in range(n - distance)]
    if periodic and n > 2:
        bonds += [(i, (i + distance) % n) for i in range(n - distance, n)]
    seen: set[frozenset] = set()
    out = []
    for i, j in bonds:
        key = frozenset((i, j))
        if i != j and key not in seen:
            seen.add(key)
            out.append((i, j))
    return out


def square_bonds(rows: int, cols: int, periodic: bool, *, ladder: bool = False) -> list[Bond]:
    """Nearest-neighbour bonds of a ``rows x cols`` lattice (a torus when periodic; see the module docstring).

    A bond may appear twice (a periodic dimension of length 2); callers add the couplings, which doubles it.
    """
    def site(r: int, c: int) -> int:
        return c * rows + r

    bonds = []
    for c in range(cols):
        for r in range(rows):
            if r + 1 < rows:
                bonds.append((site(r, c), site(r + 1, c)))
            elif periodic and not ladder and rows > 1:
                bonds.append((site(r, c), site(0, c)))
            if c + 1 < cols:
                bonds.append((site(r, c), site(r, c + 1)))
            elif periodic and cols > 1:
                bonds.append((site(r, c), site(r, 0)))
    return [(min(i, j), max(i, j)) for i, j in bonds]


def lattice_bonds(sites: int, periodic: bool, rows: int = 1, ladder: bool = False) -> list[Bond]:
    """Chain bonds for ``rows == 1``, else square-lattice (or ladder) bonds with ``sites // rows`` columns."""
    if rows == 1:
        return chain_bonds(sites, periodic)
    return square_bonds(rows, sites // rows, periodic, ladder=ladder)


def spin_hamiltonian(n: int, bonds: list[Bond], couplings: dict[str, float], fields: dict[str, float]) -> SparsePauliOp:
    """``sum_bonds sum_P couplings[P] P_i P_j + sum_i sum_P fields[P] P_i`` for P in X, Y, Z."""
    terms = [(p + p, [i, j], c) for i, j in bonds for p, c in couplings.items() if c]
    terms += [(p, [i], c) for i in range(n) for p, c in fields.items() if c]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=n).simplify(atol=1e-14)


@functools.lru_cache(maxsize=64)
def _ladder_ops(num_qubits: int) -> tuple[tuple[SparsePauliOp, SparsePauliOp], ...]:
    """Jordan-Wigner (creation, annihilation) operators: c_p = Z_0 ... Z_{p-1} (X_p + i Y_p) / 2."""
    ops = []
    for p in range(num_qubits):
        zs = "Z" * p
        lower = SparsePauliOp.from_sparse_list([("X" + zs, [p, *range(p)], 0.5), ("Y" + zs, [p, *range(p)], 0.5j)],
                                               num_qubits=num_qubits)
        ops.append((lower.adjoint(), lower))
    return tuple(ops)


def fermion_hopping(num_qubits: int, pairs: list[tuple[int, int, float]]) -> SparsePauliOp:
    """``sum coeff (c+_p c_q + c+_q c_p)`` over ``(p, q, coeff)`` under Jordan-Wigner."""
    ops = _ladder_ops(num_qubits)
    total = SparsePauliOp("I" * num_qubits, 0.0)
    for p, q, coeff in pairs:
        term = ops[p][0] @ ops[q][1]
        total = total + coeff * (term + term.adjoint())
    return total.simplify(atol=1e-14)


def hubbard(n: int, *, t: float = 1.0, U: float = 4.0, periodic: bool = True, rows: int = 1,
            ladder: bool = False) -> SparsePauliOp:
    """``H = -t sum_<ij>,s (c+_is c_js + h.c.) + U sum_i (n_i,up - 1/2)(n_i,down - 1/2)`` on ``n // 2`` sites.

    The particle-hole symmetric interaction puts the half-filled ground state lowest over all particle numbers.
    """
    sites = n // 2
    bonds = lattice_bonds(sites, periodic, rows, ladder)
    hops = [(i + spin * sites, j + spin * sites, -t) for i, j in bonds for spin in (0, 1)]
    interaction = SparsePauliOp.from_sparse_list([("ZZ", [i, i + sites], U / 4) for i in range(sites)],
                                                 num_qubits=n)
    return (fermion_hopping(n, hops) + interaction).simplify(atol=1e-14)
