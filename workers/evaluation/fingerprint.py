"""Circuit fingerprints: recognise the same ansatz written twice.

Two levels, both invariant under renaming Parameters, renaming the function's variables, reordering gates that act
on different qubits, and the global phase:

- ``structural_fingerprint``: a canonical form of the gate DAG (lexicographic topological order, parameters renamed
  ``p0, p1, ...`` by first appearance). Equal strings mean the same gate list.
- ``numerical_fingerprint``: the state the circuit prepares from |0...0> at fixed pseudo-random parameter values
  (assigned in canonical first-appearance order), global phase removed, rounded. It also matches circuits that are
  written with different but equivalent gates (cz vs h-cx-h) - a collision of two truly different circuits at one
  random point has probability zero.

``circuit_fingerprint`` (numerical up to 14 qubits, structural above) names a circuit for the store and the
reports. Score reuse is keyed by ``reuse_key`` instead: structural fingerprints at every scored size, exact.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterExpression
from qiskit.converters import circuit_to_dag
from qiskit.quantum_info import Statevector

from .errors import EvaluationError

NUMERICAL_LIMIT = 14
_DECIMALS = 6


def _canonical_ops(circuit: QuantumCircuit) -> tuple[list[tuple], list[Parameter]]:
    """Gate list in a canonical topological order, with parameters in first-appearance order."""
    dag = circuit_to_dag(circuit)
    index = {q: i for i, q in enumerate(circuit.qubits)}

    def key(node) -> str:
        if not hasattr(node, "op"):  # input/output wire nodes also pass through the sort key
            return f"~{index.get(getattr(node, 'wire', None), -1):04d}"
        return f"{node.op.name}|{','.join(f'{index[q]:04d}' for q in node.qargs)}"

    order: dict[Parameter, int] = {}
    ops = []
    for node in dag.topological_op_nodes(key=key):
        params = []
        for value in node.op.params:
            if isinstance(value, ParameterExpression):
                for p in sorted(value.parameters, key=lambda p: p.name):
                    order.setdefault(p, len(order))
                params.append(value)
            else:
                params.append(value)
        ops.append((node.op.name, tuple(index[q] for q in node.qargs), params))
    return ops, sorted(order, key=order.get)


def structural_fingerprint(circuit: QuantumCircuit) -> str:
    """sha256 of the canonical gate list, parameters renamed by first appearance."""
    ops, params = _canonical_ops(circuit)
    rename = {p: Parameter(f"p{i}") for i, p in enumerate(params)}
    rows = []
    for name, qubits, values in ops:
        shown = []
        for v in values:
            if isinstance(v, ParameterExpression):
                sub = v.subs({p: rename[p] for p in v.parameters})
                shown.append(str(sub))
            else:
                try:
                    shown.append(f"{float(v):.{_DECIMALS}f}")
                except (TypeError, ValueError):
                    shown.append(str(v))
        rows.append([name, list(qubits), shown])
    payload = json.dumps([circuit.num_qubits, rows], separators=(",", ":"))
    return "s:" + hashlib.sha256(payload.encode()).hexdigest()


def numerical_fingerprint(circuit: QuantumCircuit, *, seed: int = 12345) -> str:
    """sha256 of the prepared state at fixed random parameters (canonical order), global phase removed."""
    if circuit.num_qubits > NUMERICAL_LIMIT:
        raise EvaluationError(f"numerical fingerprint supports at most {NUMERICAL_LIMIT} qubits, "
                              f"got {circuit.num_qubits}")
    _, params = _canonical_ops(circuit)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.1, 2 * np.pi - 0.1, size=len(params))
    try:
        bound = circuit.assign_parameters(dict(zip(params, values)), inplace=False)
        bound.global_phase = 0
        state = Statevector(bound).data
    except Exception as exc:  # qiskit failures become one family
        raise EvaluationError(f"cannot simulate the circuit for its fingerprint: {exc}") from exc
    pivot = int(np.argmax(np.abs(state) > np.abs(state).max() - 1e-4))
    state = state * np.exp(-1j * np.angle(state[pivot]))
    rounded = np.round(np.concatenate([state.real, state.imag]), _DECIMALS) + 0.0  # +0.0 folds -0.0
    payload = json.dumps([circuit.num_qubits, len(params)]).encode() + rounded.tobytes()
    return "n:" + hashlib.sha256(payload).hexdigest()


def circuit_fingerprint(circuit: QuantumCircuit) -> str:
    """The fingerprint the store keys re-use on: numerical when small enough, structural otherwise."""
    if circuit.num_qubits <= NUMERICAL_LIMIT:
        return numerical_fingerprint(circuit)
    return structural_fingerprint(circuit)


def reuse_key(circuits: dict[int, QuantumCircuit], scorer_version: str) -> str:
    """The exact key under which scores may be reused: ``scorer_version`` and the structural fingerprint (canonical
    gate list, Parameters renamed by first appearance; no numerical point a candidate could aim a collision at) of
    the circuit at every scored size, so a copy matches only when all its circuits are the same gate lists."""
    parts = [scorer_version] + [f"{n}={structural_fingerprint(c)}" for n, c in sorted(circuits.items())]
    return "r:" + hashlib.sha256("|".join(parts).encode()).hexdigest()
