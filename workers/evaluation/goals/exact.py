"""Exact ground energies of qubit Hamiltonians, in the whole space or a particle sector, cached in memory and on disk.

Whole space: dense diagonalisation up to 10 qubits, a sparse Lanczos solver (ARPACK ``eigsh``) above. A particle
sector (``sector=(n_up, n_down)``: basis states with ``n_up`` ones on the lower half of the qubits and ``n_down`` on
the upper half, the Jordan-Wigner block order) is solved on the sector's basis states only, built by applying each
Pauli string to them, so a 12-qubit molecule is a 225-dimensional problem.

The on-disk cache lives in ``$QMIND_CACHE_DIR`` (default ``~/.cache/quantum-mind``). A file is named by the key of
the Hamiltonian's content and the sector and records both; a file whose recorded content hash or sector does not
match is ignored and recomputed, never trusted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import tempfile
from itertools import combinations

import numpy as np
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError

DENSE_LIMIT = 10
SPARSE_LIMIT = 22
Sector = tuple[int, int] | None


def hamiltonian_key(hamiltonian: SparsePauliOp) -> str:
    """A stable sha256 of the simplified, sorted Pauli list (labels and coefficients rounded to 1e-12)."""
    op = hamiltonian.simplify(atol=1e-14)
    items = sorted((label, round(float(np.real(c)), 12), round(float(np.imag(c)), 12)) for label, c in op.to_list())
    payload = json.dumps([op.num_qubits, items], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_key(content_hash: str, sector: Sector) -> str:
    """The cache file name: the content hash alone for the whole space, hashed with the sector otherwise."""
    if sector is None:
        return content_hash
    return hashlib.sha256(f"{content_hash}:sector={sector[0]},{sector[1]}".encode()).hexdigest()


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("QMIND_CACHE_DIR", pathlib.Path.home() / ".cache" / "quantum-mind"))


def _disk_get(content_hash: str, sector: Sector = None) -> float | None:
    """The cached energy, or None when absent, unreadable, or recorded for another Hamiltonian or sector."""
    path = cache_dir() / "exact" / f"{cache_key(content_hash, sector)}.json"
    try:
        record = json.loads(path.read_text())
        if record["hamiltonian_sha256"] != content_hash or record["sector"] != (None if sector is None
                                                                               else list(sector)):
            return None
        energy = float(record["energy"])
        return energy if np.isfinite(energy) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _disk_put(content_hash: str, sector: Sector, energy: float) -> None:
    folder = cache_dir() / "exact"
    record = {"hamiltonian_sha256": content_hash, "sector": None if sector is None else list(sector),
              "energy": energy}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as fh:
            json.dump(record, fh)
        os.replace(fh.name, folder / f"{cache_key(content_hash, sector)}.json")
    except OSError:
        pass  # a read-only home is not an error: the in-memory cache still works


def is_hermitian(hamiltonian: SparsePauliOp, atol: float = 1e-10) -> bool:
    """True when H equals its adjoint up to ``atol`` in every Pauli coefficient."""
    diff = (hamiltonian - hamiltonian.adjoint()).simplify(atol=atol)
    return bool(np.all(np.abs(diff.coeffs) <= atol))


def sector_states(num_qubits: int, sector: tuple[int, int]) -> np.ndarray:
    """Sorted basis-state integers with ``sector[0]`` ones on the lower and ``sector[1]`` on the upper half."""
    half = num_qubits // 2
    if num_qubits % 2 or not all(0 <= k <= half for k in sector):
        raise EvaluationError(f"sector {sector} does not fit {num_qubits} qubits (an even number, each count "
                              f"between 0 and {half})")
    low = [sum(1 << q for q in c) for c in combinations(range(half), sector[0])]
    high = [sum(1 << (q + half) for q in c) for c in combinations(range(half), sector[1])]
    return np.sort(np.add.outer(np.array(high, dtype=np.int64), np.array(low, dtype=np.int64)).ravel())


def sector_matrix(hamiltonian: SparsePauliOp, states: np.ndarray):
    """The Hamiltonian restricted to the span of ``states`` (sparse); refuses operators that leave the span.

    Single Pauli strings may leave it (X X alone changes a particle number); their sum must not.
    """
    from scipy.sparse import coo_matrix

    rows, cols, vals, out_rows, out_cols, out_vals = [], [], [], [], [], []
    for label, coeff in hamiltonian.to_list():
        bits = label[::-1]
        xmask = sum(1 << q for q, p in enumerate(bits) if p in "XY")
        zmask = sum(1 << q for q, p in enumerate(bits) if p in "ZY")
        target = states ^ xmask
        where = np.searchsorted(states, target)
        inside = (where < len(states)) & (states[np.minimum(where, len(states) - 1)] == target)
        parity = (np.bitwise_count(states & zmask) & 1).astype(np.int64)
        value = coeff * (1j) ** bits.count("Y") * (1 - 2 * parity)
        rows.append(where[inside])
        cols.append(np.nonzero(inside)[0])
        vals.append(value[inside])
        out_rows.append(target[~inside])
        out_cols.append(np.nonzero(~inside)[0])
        out_vals.append(value[~inside])
    leaving = np.concatenate(out_vals)
    if leaving.size:
        targets, index = np.unique(np.concatenate(out_rows), return_inverse=True)
        outside = coo_matrix((leaving, (index, np.concatenate(out_cols))), shape=(len(targets), len(states)))
        if np.max(np.abs(outside.tocsr().data), initial=0.0) > 1e-10:
            raise EvaluationError("the Hamiltonian moves states out of the declared particle sector: it does not "
                                  "conserve the spin-up and spin-down particle numbers the goal declares")
    dim = len(states)
    return coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(dim, dim)).tocsr()


def _lowest(matrix, dense: bool) -> float:
    if dense:
        return float(np.linalg.eigvalsh(matrix)[0])
    from scipy.sparse.linalg import eigsh

    v0 = np.random.default_rng(0).standard_normal(matrix.shape[0])
    return float(np.real(eigsh(matrix, k=1, which="SA", tol=1e-12, v0=v0, maxiter=100_000)[0][0]))


def compute_ground_energy(hamiltonian: SparsePauliOp, sector: Sector = None) -> float:
    """The lowest eigenvalue of ``hamiltonian`` over the whole 2**n space or one particle sector, uncached."""
    n = hamiltonian.num_qubits
    if n > SPARSE_LIMIT:
        raise EvaluationError(f"exact energy needs {n} qubits; at most {SPARSE_LIMIT} are supported")
    if not is_hermitian(hamiltonian):
        raise EvaluationError("the Hamiltonian is not Hermitian: its ground energy is undefined")
    try:
        if sector is not None:
            matrix = sector_matrix(hamiltonian, sector_states(n, sector))
            if matrix.shape[0] <= 2**DENSE_LIMIT:
                return _lowest(matrix.toarray(), dense=True)
            return _lowest(matrix, dense=False)
        if n <= DENSE_LIMIT:
            return _lowest(hamiltonian.to_matrix(), dense=True)
        return _lowest(hamiltonian.to_matrix(sparse=True), dense=False)
    except EvaluationError:
        raise
    except Exception as exc:  # scipy / numpy failures become one family
        raise EvaluationError(f"exact diagonalisation failed for a {n}-qubit Hamiltonian: {exc}") from exc


@functools.lru_cache(maxsize=256)
def _cached(content_hash: str, sector: Sector, hamiltonian_json: str) -> float:
    energy = _disk_get(content_hash, sector)
    if energy is None:
        labels = json.loads(hamiltonian_json)
        op = SparsePauliOp.from_list([(label, complex(re, im)) for label, re, im in labels])
        energy = compute_ground_energy(op, sector)
        _disk_put(content_hash, sector, energy)
    return energy


def ground_energy(hamiltonian: SparsePauliOp, *, sector: Sector = None) -> float:
    """The exact ground energy (in ``sector`` when given), from memory, then the disk cache, then the eigensolver."""
    content_hash = hamiltonian_key(hamiltonian)
    labels = [(label, float(np.real(c)), float(np.imag(c))) for label, c in hamiltonian.to_list()]
    return _cached(content_hash, None if sector is None else tuple(sector), json.dumps(labels))
