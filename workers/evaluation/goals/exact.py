"""Exact ground energies of qubit Hamiltonians, cached in memory and on disk.

Dense diagonalisation up to 10 qubits, a sparse Lanczos solver (ARPACK ``eigsh``) above. The on-disk cache lives in
``$QMIND_CACHE_DIR`` (default ``~/.cache/quantum-mind``) keyed by a hash of the Pauli list, so a worker pays for a
large eigenproblem once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import tempfile

import numpy as np
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError

DENSE_LIMIT = 10
SPARSE_LIMIT = 22


def hamiltonian_key(hamiltonian: SparsePauliOp) -> str:
    """A stable sha256 of the simplified, sorted Pauli list (labels and coefficients rounded to 1e-12)."""
    op = hamiltonian.simplify(atol=1e-14)
    items = sorted((label, round(float(np.real(c)), 12), round(float(np.imag(c)), 12)) for label, c in op.to_list())
    payload = json.dumps([op.num_qubits, items], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("QMIND_CACHE_DIR", pathlib.Path.home() / ".cache" / "quantum-mind"))


def _disk_get(key: str) -> float | None:
    path = cache_dir() / "exact" / f"{key}.json"
    try:
        return float(json.loads(path.read_text())["energy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _disk_put(key: str, energy: float) -> None:
    folder = cache_dir() / "exact"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as fh:
            json.dump({"energy": energy}, fh)
        os.replace(fh.name, folder / f"{key}.json")
    except OSError:
        pass  # a read-only home is not an error: the in-memory cache still works


def is_hermitian(hamiltonian: SparsePauliOp, atol: float = 1e-10) -> bool:
    """True when H equals its adjoint up to ``atol`` in every Pauli coefficient."""
    diff = (hamiltonian - hamiltonian.adjoint()).simplify(atol=atol)
    return bool(np.all(np.abs(diff.coeffs) <= atol))


def compute_ground_energy(hamiltonian: SparsePauliOp) -> float:
    """The lowest eigenvalue of ``hamiltonian`` over the whole 2**n space, uncached."""
    n = hamiltonian.num_qubits
    if n > SPARSE_LIMIT:
        raise EvaluationError(f"exact energy needs {n} qubits; at most {SPARSE_LIMIT} are supported")
    if not is_hermitian(hamiltonian):
        raise EvaluationError("the Hamiltonian is not Hermitian: its ground energy is undefined")
    try:
        if n <= DENSE_LIMIT:
            return float(np.linalg.eigvalsh(hamiltonian.to_matrix())[0])
        from scipy.sparse.linalg import eigsh

        matrix = hamiltonian.to_matrix(sparse=True)
        rng = np.random.default_rng(0)
        v0 = rng.standard_normal(matrix.shape[0])
        values = eigsh(matrix, k=1, which="SA", tol=1e-12, v0=v0, maxiter=100_000)[0]
        return float(np.real(values[0]))
    except Exception as exc:  # scipy / numpy failures become one family
        raise EvaluationError(f"exact diagonalisation failed for a {n}-qubit Hamiltonian: {exc}") from exc


@functools.lru_cache(maxsize=256)
def _cached(key: str, hamiltonian_json: str) -> float:
    energy = _disk_get(key)
    if energy is None:
        labels = json.loads(hamiltonian_json)
        op = SparsePauliOp.from_list([(label, complex(re, im)) for label, re, im in labels])
        energy = compute_ground_energy(op)
        _disk_put(key, energy)
    return energy


def ground_energy(hamiltonian: SparsePauliOp) -> float:
    """The exact ground energy, from memory, then the disk cache, then the eigensolver."""
    key = hamiltonian_key(hamiltonian)
    labels = [(label, float(np.real(c)), float(np.imag(c))) for label, c in hamiltonian.to_list()]
    return _cached(key, json.dumps(labels))
