"""A verified ansatz compiled into a flat *program*: fixed gates and Pauli rotations with affine angles.

Both simulator engines run the same program, so they differ only in how they simulate, never in what they
simulate. Compilation:

1. Every parametrised gate that is not already a Pauli rotation (``u``, ``p``, ``cp``, ``crx``, ``cu``, ``r``,
   ``xx_plus_yy``, ...) is translated by Qiskit's basis translator (``transpile(..., optimization_level=0)``) into
   the basis ``rx ry rz rxx ryy rzz rzx`` plus parameter-free standard gates. Each occurrence of a Pauli rotation
   ``exp(-i phi/2 P)`` (P a Pauli string, P^2 = I) obeys the exact two-term shift rule
   ``dE/dphi = [E(phi + pi/2) - E(phi - pi/2)] / 2`` and has the generator ``dU/dphi = -i/2 P U``.
2. Every rotation angle must be an *affine* function of the trainable Parameters, ``phi_j = sum_k A[j,k] theta_k + b_j``
   with real, finite ``A`` and ``b`` (``2*theta``, ``theta + phi``, ``-theta/2``, and everything Qiskit's own gate
   definitions produce). The chain rule is then exact and vectorised: ``dE/dtheta = A^T dE/dphi``.
3. Parameter-free gates (including rotations by numeric angles) become fixed unitary matrices.

The global phase is dropped (it never changes an expectation value). Anything that is not a standard unitary gate
(measure, reset, initialize, custom definitions, control flow) is refused: ``verify.py`` rejects it first, and
compilation refuses it again so a simulator can never be handed a non-unitary instruction.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector

from ..errors import EvaluationError

# Pauli letters per qarg (qargs[0] first). RZX(theta) on (a, b) is exp(-i theta/2 Z_a X_b).
PAULI_ROTATIONS: dict[str, str] = {"rx": "X", "ry": "Y", "rz": "Z", "rxx": "XX", "ryy": "YY", "rzz": "ZZ",
                                   "rzx": "ZX"}
IGNORED = frozenset({"barrier"})
MAX_EXPRESSION_PARAMETERS = 64
"""Parameters one angle expression may depend on (bounds the cost of checking hostile expressions)."""
MAX_EXPRESSION_CHARS = 1000
"""Longest angle expression (as text) accepted, checked before any evaluation."""
MAX_ANGLE = 1e6
"""Largest magnitude of a numeric angle, an angle's constant part or a Parameter's coefficient."""
_RANDOM = random.SystemRandom()  # secret check points: an expression cannot be made affine only where it is checked
_SINGLE = {"I": np.eye(2, dtype=complex), "X": np.array([[0, 1], [1, 0]], dtype=complex),
           "Y": np.array([[0, -1j], [1j, 0]]), "Z": np.diag([1.0, -1.0]).astype(complex)}


class AngleError(EvaluationError):
    """A gate angle that is not a finite real number or a real affine function of Parameters."""


def _real(value, what: str) -> float:
    try:
        z = complex(value)
    except (TypeError, ValueError) as exc:
        raise AngleError(f"{what} is {value!r}, which is not a number") from exc
    if not (math.isfinite(z.real) and math.isfinite(z.imag)):
        raise AngleError(f"{what} is {value!r}: angles must be finite (no NaN or infinity)")
    if abs(z.imag) > 1e-12 * max(1.0, abs(z.real)):
        raise AngleError(f"{what} is complex ({value!r}): angles must be real")
    return z.real


def affine_form(value, cache: dict | None = None) -> tuple[dict[Parameter, float], float]:
    """``value`` as ``sum_k c_k theta_k + b``: ({Parameter: c_k}, b).

    Raises ``AngleError`` (with a message fit for the model) when ``value`` is NaN/infinite, complex, too large, or
    not affine in its Parameters (``sin(theta)``, ``theta**2``, ``theta*phi``). ``cache`` (text -> result) lets a
    caller pay once for an expression a circuit reuses (Parameter names are unique within a circuit).
    """
    if not isinstance(value, ParameterExpression):
        return {}, _bounded(_real(value, "the angle"), "the angle")
    params = list(value.parameters)
    if len(params) > MAX_EXPRESSION_PARAMETERS:
        raise AngleError(f"an angle depends on {len(params)} Parameters; at most {MAX_EXPRESSION_PARAMETERS} "
                         f"per angle are accepted (give each gate its own Parameter or a short expression)")
    full = str(value)
    if len(full) > MAX_EXPRESSION_CHARS:
        raise AngleError(f"an angle expression is {len(full)} characters long; at most {MAX_EXPRESSION_CHARS} "
                         f"are accepted (use Parameters directly or short linear expressions)")
    if cache is not None:
        if full not in cache:
            try:
                cache[full] = _affine(value, params, full)
            except AngleError as exc:
                cache[full] = exc
        if isinstance(cache[full], AngleError):
            raise cache[full]
        return cache[full]
    return _affine(value, params, full)


def _evaluate(value: ParameterExpression, point: dict, text: str) -> float:
    try:
        return _real(value.bind(point).numeric(), f"the angle {text}")
    except AngleError:
        raise
    except Exception as exc:  # qiskit raises assorted errors for division by zero, overflow, NaN binding, ...
        raise AngleError(f"the angle {text} cannot be evaluated ({exc}); angles must be finite real numbers "
                         f"or linear expressions of Parameters") from exc


def _affine(value: ParameterExpression, params: list, text: str) -> tuple[dict[Parameter, float], float]:
    """Numerically, never symbolically: the offset and the coefficients from len(params) + 1 evaluations, then the
    affine form must reproduce the expression at three secret random points. The cost is a fixed number of
    evaluations of an expression whose size was bounded before (a symbolic gradient of a short nested polynomial
    ran for minutes in native code)."""
    if len(text) > 200:
        text = text[:200] + "..."
    if not params:
        return {}, _bounded(_real(_numeric(value, text), f"the angle {text}"), f"the angle {text}")
    zero = {p: 0.0 for p in params}
    offset = _bounded(_evaluate(value, zero, text), f"the constant part of the angle {text}")
    coeffs: dict[Parameter, float] = {}
    for p in params:
        coeffs[p] = _bounded(_evaluate(value, {**zero, p: 1.0}, text) - offset,
                             f"the coefficient of {p.name} in the angle {text}")
    scale = max(1.0, abs(offset), *(abs(c) for c in coeffs.values()))
    for _ in range(3):
        point = {p: _RANDOM.uniform(-7.0, 7.0) for p in params}
        got = _evaluate(value, point, text)
        want = offset + sum(c * point[p] for p, c in coeffs.items())
        if abs(got - want) > 1e-8 * scale * (1 + 7 * len(params)):
            raise AngleError(f"the angle {text} is not a linear function of its Parameters; use Parameters "
                             f"directly or linear expressions such as 2*theta, theta + phi, -theta/2")
    return coeffs, offset


def _numeric(value: ParameterExpression, text: str):
    try:
        return value.numeric()
    except Exception as exc:
        raise AngleError(f"the angle {text} cannot be evaluated as a real number: {exc}") from exc


def _bounded(number: float, what: str) -> float:
    if abs(number) > MAX_ANGLE:
        raise AngleError(f"{what} is {number:.6g}; angles and their coefficients must be at most {MAX_ANGLE:g} in "
                         f"magnitude (angles are periodic: reduce them modulo 2*pi)")
    return number


@dataclasses.dataclass(frozen=True, eq=False)
class FixedGate:
    """A parameter-free unitary on ``qubits`` (matrix in Qiskit order: qubits[0] is the least significant bit)."""

    qubits: tuple[int, ...]
    matrix: np.ndarray
    operation: object
    """The Qiskit gate, for rebuilding a circuit (the Aer engine)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Rotation:
    """``exp(-i phi/2 P)`` with P the Pauli string ``paulis`` (one letter per qubit, same order as ``qubits``)."""

    qubits: tuple[int, ...]
    paulis: str
    index: int
    """Which angle phi_j of the program (row of ``Program.coefficients``)."""
    name: str


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """A compiled ansatz: ``ops`` applied in order to |0...0>, angles ``phi = theta @ A.T + b``."""

    num_qubits: int
    ops: tuple
    parameters: tuple[Parameter, ...]
    """The trainable Parameters in ``QuantumCircuit.parameters`` order (the order of ``assign_parameters``)."""
    coefficients: np.ndarray
    """A, shape (num_angles, num_parameters)."""
    offsets: np.ndarray
    """b, shape (num_angles,)."""

    @property
    def num_parameters(self) -> int:
        return len(self.parameters)

    @property
    def num_angles(self) -> int:
        return int(self.offsets.shape[0])

    def angles(self, thetas: np.ndarray) -> np.ndarray:
        """phi for a batch: (B, num_parameters) -> (B, num_angles)."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        if thetas.shape[1] != self.num_parameters:
            raise EvaluationError(f"expected {self.num_parameters} parameter values per row, got {thetas.shape[1]}")
        return thetas @ self.coefficients.T + self.offsets

    def chain(self, angle_gradients: np.ndarray) -> np.ndarray:
        """dE/dtheta from dE/dphi: (B, num_angles) -> (B, num_parameters)."""
        return angle_gradients @ self.coefficients

    def angle_circuit(self) -> tuple[QuantumCircuit, ParameterVector]:
        """The program as a circuit in which every rotation occurrence j has its own Parameter phi[j]."""
        phi = ParameterVector("phi", self.num_angles)
        qc = QuantumCircuit(self.num_qubits)
        for op in self.ops:
            if isinstance(op, Rotation):
                getattr(qc, op.name)(phi[op.index], *op.qubits)
            else:
                qc.append(op.operation, op.qubits)
        return qc, phi


@functools.cache
def _basis() -> tuple[str, ...]:
    from qiskit.circuit.library import get_standard_gate_name_mapping

    fixed = [name for name, gate in get_standard_gate_name_mapping().items()
             if not gate.params and name not in ("measure", "reset", "delay", "global_phase", "barrier")]
    return tuple(PAULI_ROTATIONS) + tuple(sorted(fixed))


def pauli_matrix(paulis: str) -> np.ndarray:
    """The matrix of a Pauli string given per qarg (paulis[0] acts on the least significant bit)."""
    matrix = np.ones((1, 1), dtype=complex)
    for letter in paulis:
        matrix = np.kron(_SINGLE[letter], matrix)
    return matrix


def _needs_translation(circuit: QuantumCircuit) -> bool:
    for inst in circuit.data:
        op = inst.operation
        if op.name in IGNORED or op.name in PAULI_ROTATIONS:
            continue
        if any(isinstance(p, ParameterExpression) and p.parameters for p in op.params):
            return True
    return False


def _check_unitary(matrix: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(matrix)):
        raise EvaluationError(f"gate '{name}' has a non-finite matrix")
    if not np.allclose(matrix.conj().T @ matrix, np.eye(matrix.shape[0]), atol=1e-10):
        raise EvaluationError(f"gate '{name}' is not unitary; only unitary gates can be simulated")
    return matrix


def compile_circuit(circuit: QuantumCircuit) -> Program:
    """Compile a verified circuit into a ``Program`` (raises ``EvaluationError`` on anything unsimulable)."""
    if not isinstance(circuit, QuantumCircuit):
        raise EvaluationError(f"expected a QuantumCircuit, got {type(circuit).__name__}")
    if circuit.num_clbits:
        raise EvaluationError("the circuit has classical bits; only purely quantum circuits can be simulated")
    parameters = tuple(circuit.parameters)
    position = {p: k for k, p in enumerate(parameters)}
    for inst in circuit.data:
        if inst.operation.name not in IGNORED and not inst.is_standard_gate():
            raise EvaluationError(f"instruction '{inst.operation.name}' is not a standard unitary gate; "
                                  f"it cannot be simulated")
    if _needs_translation(circuit):
        from qiskit import transpile

        try:
            circuit = transpile(circuit, basis_gates=list(_basis()), optimization_level=0)
        except Exception as exc:
            raise EvaluationError(f"could not translate the circuit into Pauli rotations: {exc}") from exc
    ops: list = []
    rows: list[np.ndarray] = []
    offsets: list[float] = []
    cache: dict = {}
    for inst in circuit.data:
        op = inst.operation
        if op.name in IGNORED:
            continue
        if not inst.is_standard_gate():
            raise EvaluationError(f"instruction '{op.name}' is not a standard unitary gate; it cannot be simulated")
        qubits = tuple(circuit.find_bit(q).index for q in inst.qubits)
        if op.name in PAULI_ROTATIONS:
            coeffs, offset = affine_form(op.params[0], cache)
            coeffs = {p: c for p, c in coeffs.items() if c != 0.0}
            if coeffs:
                row = np.zeros(len(parameters))
                for p, c in coeffs.items():
                    if p not in position:
                        raise EvaluationError(f"Parameter {p.name} is not a parameter of the circuit")
                    row[position[p]] = c
                ops.append(Rotation(qubits, PAULI_ROTATIONS[op.name], len(rows), op.name))
                rows.append(row)
                offsets.append(offset)
                continue
            op = type(op)(offset)
        for k, value in enumerate(op.params):
            if isinstance(value, ParameterExpression) and value.parameters:
                raise EvaluationError(f"gate '{op.name}' still has symbolic parameters after translation")
            _real(value, f"parameter {k} of gate '{op.name}'")
        try:
            matrix = np.asarray(op.to_matrix(), dtype=complex)
        except Exception as exc:
            raise EvaluationError(f"gate '{op.name}' has no matrix: {exc}") from exc
        if matrix.shape != (2 ** len(qubits),) * 2:
            raise EvaluationError(f"gate '{op.name}' matrix has shape {matrix.shape} for {len(qubits)} qubits")
        ops.append(FixedGate(qubits, _check_unitary(matrix, op.name), op))
    coefficients = np.array(rows, dtype=float).reshape(len(rows), len(parameters))
    return Program(circuit.num_qubits, tuple(ops), parameters, coefficients, np.array(offsets, dtype=float))
