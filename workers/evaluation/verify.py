"""Static checks of a built circuit against a goal's limits, each failure with a message fit for the model.

Policy (what the scorer accepts):

- a ``QuantumCircuit`` on exactly ``goal.num_qubits`` qubits and **no classical bits**, no classical variables
  (``add_input``/``add_var``) and no stretches: the ansatz is a state preparation; the scorer measures the
  Hamiltonian itself;
- only **standard** Qiskit gates whose names are in ``goal.allowed_gates``. An instruction that merely *carries*
  an allowed name (a custom ``Gate("rx", ...)``, an open-controlled ``cx``) is refused, and so are custom composite
  gates (``to_gate()``, ``to_instruction()``, ``append`` of a sub-circuit, ``UnitaryGate``): they would hide gates
  and depth from these checks. ``compose(..., inplace=True)`` inlines gates and is fine;
- **barriers** are accepted and ignored by the simulators (they only synchronise qubits in ``depth()``);
- **measure, reset, initialize, delay** and control flow are refused: they are not unitary gates, and a scorer
  that simulated them could report energies below the ground energy;
- at least one ``Parameter`` in a gate; every angle a finite real number or a real *affine* expression of
  Parameters (``2*theta``, ``theta + phi``, ``-theta/2``); NaN/infinite/complex angles and non-linear
  expressions (``sin(theta)``, ``theta**2``) are refused; Parameters that occur only in the global phase are refused
  (they cannot change the energy);
- ``QuantumCircuit.depth()`` of the circuit as built at most ``goal.max_depth``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression

from .goals import Goal
from .results import VerificationResult
from .simulation.program import AngleError, affine_form
from .text import clean_name

MAX_INSTRUCTIONS = 100_000
"""Instructions beyond which a circuit is refused before any per-gate work (a goal's depth limit is tighter)."""
MAX_PARAMETERS = 10_000
"""Distinct Parameters beyond which a circuit is refused before any per-gate work."""
NON_UNITARY = ("measure", "reset", "initialize", "delay", "store")
CONTROL_FLOW = ("if_else", "while_loop", "for_loop", "switch_case", "box", "break_loop", "continue_loop")
_MAX_MESSAGES = 5


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _limited(messages: list[str], what: str = "angle problems") -> list[str]:
    if len(messages) <= _MAX_MESSAGES:
        return messages
    return messages[:_MAX_MESSAGES] + [f"... and {len(messages) - _MAX_MESSAGES} more {what}"]


def _names(names, limit: int = 10) -> str:
    """Candidate-chosen names for a message: cleaned, capped, at most ``limit`` of them."""
    shown = [clean_name(n) for n in sorted(names)[:limit]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@functools.cache
def _standard_shapes() -> dict[str, tuple[int, int]]:
    """Standard gate name -> (qubits, parameters) as Qiskit defines the gate."""
    from qiskit.circuit.library import get_standard_gate_name_mapping

    return {name: (gate.num_qubits, len(gate.params)) for name, gate in get_standard_gate_name_mapping().items()}


def malformed(inst, index: dict, position: int) -> str | None:
    """Why an instruction's shape is impossible for its gate (repeated or foreign qubits, wrong arity or parameter
    count, classical bits on a gate), or None. Such instructions can only be built through private Qiskit API
    and crash simulators."""
    op, name = inst.operation, clean_name(inst.operation.name)
    qubits = inst.qubits
    where = f"instruction {position} ({name})"
    if any(q not in index for q in qubits):
        return f"{where} acts on a qubit that is not one of the circuit's qubits"
    if len(set(qubits)) != len(qubits):
        shown = ", ".join(str(index[q]) for q in qubits)
        return f"{where} acts on the same qubit more than once (qubits {shown}); a gate needs distinct qubits"
    if inst.clbits:
        return f"{where} has classical bits; gates act on qubits only"
    if len(qubits) != getattr(op, "num_qubits", len(qubits)):
        return f"{where} is applied to {len(qubits)} qubits but is a {op.num_qubits}-qubit gate"
    shape = _standard_shapes().get(inst.operation.name) if inst.is_standard_gate() else None
    if shape is not None and (len(qubits), len(op.params)) != shape:
        return (f"{where} has {len(qubits)} qubits and {len(op.params)} parameters; the standard gate has "
                f"{shape[0]} qubits and {shape[1]} parameters")
    return None


def _parameters_of(op) -> set:
    found: set = set()
    for value in getattr(op, "params", ()):
        if isinstance(value, ParameterExpression):
            found.update(value.parameters)
    return found


def _parameter_names(parameters) -> str:
    return _names([p.name for p in parameters])


def _parameter_messages(circuit: QuantumCircuit, trainable: set, zeroed: set, in_gates: set,
                        other_errors: bool) -> list[str]:
    """What is wrong with the circuit's Parameters: none trainable, coefficient 0, or only in the global phase.

    A Parameter counts as trainable only when it enters an accepted gate's angle with a non-zero coefficient.
    One that appears in any instruction is never reported as "only in the global phase" (a refused instruction
    has its own message). "No trainable Parameters" is reported only when nothing else was wrong (after a refused
    gate or a bad angle it would be a consequence, not the cause).
    """
    messages = []
    if zeroed:
        messages.append(f"Parameter(s) {_parameter_names(zeroed)} enter every angle they appear in with coefficient "
                        f"0 (e.g. 0*theta + 0.3), so they cannot change the state; use each Parameter with a "
                        f"non-zero coefficient or remove it")
    phase = circuit.global_phase
    in_phase = set(phase.parameters) if isinstance(phase, ParameterExpression) else set()
    only_phase = in_phase - in_gates
    if only_phase:
        messages.append(f"Parameter(s) {_parameter_names(only_phase)} appear only in the global phase, where they "
                        f"cannot change the energy; remove them")
    if not trainable and not zeroed and not other_errors:
        messages.append("the circuit has no Parameters in any gate angle: every trainable angle must be a "
                        "qiskit.circuit.Parameter with a non-zero coefficient (e.g. theta = Parameter('theta_0'); "
                        "qc.ry(theta, 0)), and at least one is required")
    return messages


@dataclasses.dataclass
class _Scan:
    """What one pass over the instructions found."""

    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    forbidden: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    impostors: set = dataclasses.field(default_factory=set)
    non_unitary: set = dataclasses.field(default_factory=set)
    custom: set = dataclasses.field(default_factory=set)
    shapes: list = dataclasses.field(default_factory=list)
    angle_errors: list = dataclasses.field(default_factory=list)
    trainable: set = dataclasses.field(default_factory=set)
    zeroed: set = dataclasses.field(default_factory=set)
    """Parameters seen with coefficient 0 (``0*t``): they cannot change anything."""
    in_gates: set = dataclasses.field(default_factory=set)
    """Parameters seen in any instruction (accepted or refused)."""
    expressions: dict = dataclasses.field(default_factory=dict)
    """affine_form cache: a reused expression is checked once."""
    two_qubit: int = 0


def verify_circuit(circuit: object, goal: Goal) -> VerificationResult:
    """Check ``circuit`` against ``goal``; never raises for anything a candidate can build."""
    if not isinstance(circuit, QuantumCircuit):
        return VerificationResult(ok=False, errors=(
            f"create_ansatz must return a qiskit QuantumCircuit; it returned {clean_name(type(circuit).__name__)}",))
    errors = _width_errors(circuit, goal)
    too_big = _size_errors(circuit, goal)
    if too_big:
        return VerificationResult(ok=False, errors=tuple(errors + too_big), num_qubits=circuit.num_qubits)
    scan = _scan(circuit, tuple(goal.allowed_gates))
    errors += _scan_errors(scan, tuple(goal.allowed_gates))
    try:  # a parametrised global phase is checked like any angle (cannot change the energy, but must be sane)
        affine_form(circuit.global_phase, scan.expressions)
    except AngleError as exc:
        errors.append(f"global phase: {exc}")
    errors.extend(_parameter_messages(circuit, scan.trainable, scan.zeroed - scan.trainable, scan.in_gates,
                                      bool(errors)))
    depth = 0 if scan.shapes else circuit.depth()
    if depth > goal.max_depth:
        errors.append(f"circuit depth is {depth}, the limit is {goal.max_depth}: use fewer layers or put gates on "
                      f"different qubits in the same layer")
    return VerificationResult(
        ok=not errors, errors=tuple(errors), num_qubits=circuit.num_qubits, depth=depth,
        num_parameters=len(scan.trainable), gate_counts=dict(sorted(scan.counts.items())),
        num_two_qubit_gates=scan.two_qubit)


def _size_errors(circuit: QuantumCircuit, goal: Goal) -> list[str] | None:
    """Refusals before any per-gate work (too many instructions or Parameters for the goal's limits), or None."""
    errors = []
    size = len(circuit.data)
    cap = instruction_cap(goal.max_depth, circuit.num_qubits)
    if size > cap:
        errors.append(f"circuit has {size} instructions; a circuit of depth at most {goal.max_depth} on "
                      f"{circuit.num_qubits} qubits has far fewer (at most {cap} are inspected)")
    if circuit.num_parameters > MAX_PARAMETERS:
        errors.append(f"circuit has {circuit.num_parameters} Parameters; at most {MAX_PARAMETERS} are accepted")
    return errors or None


def instruction_cap(max_depth: int, num_qubits: int) -> int:
    """Instructions a circuit of depth ``max_depth`` on ``num_qubits`` qubits may have before it is refused."""
    return min(MAX_INSTRUCTIONS, max(1, max_depth) * max(1, num_qubits) * 2 + 1000)


def _width_errors(circuit: QuantumCircuit, goal: Goal) -> list[str]:
    errors = []
    n = goal.num_qubits
    if circuit.num_qubits != n:
        errors.append(f"circuit has {_plural(circuit.num_qubits, 'qubit')}, expected {n}: "
                      f"create_ansatz(num_qubits) must build a circuit on exactly num_qubits qubits")
    if circuit.num_clbits:
        errors.append(f"circuit has {_plural(circuit.num_clbits, 'classical bit')}; the ansatz must be purely "
                      f"quantum: use QuantumCircuit(num_qubits) with no classical bits and no measurements "
                      f"(the scorer measures the Hamiltonian itself)")
    declared = [v.name for v in circuit.iter_vars()] + [s.name for s in circuit.iter_stretches()]
    if declared:  # unused, they still break every later stage (Qiskit cannot turn such a circuit into a gate)
        errors.append(f"circuit declares classical variables or stretches ({_names(declared)}); the ansatz must be "
                      f"purely quantum: no add_input/add_var/add_stretch")
    return errors


def _scan(circuit: QuantumCircuit, allowed: tuple[str, ...]) -> _Scan:
    scan = _Scan()
    index = {q: i for i, q in enumerate(circuit.qubits)}
    for position, inst in enumerate(circuit.data):
        op = inst.operation
        name = str(op.name)
        if name == "barrier":
            continue
        scan.in_gates.update(_parameters_of(op))
        if name in NON_UNITARY or name.startswith(("save_", "set_")):
            scan.non_unitary.add(name)
            continue
        if name in CONTROL_FLOW:
            scan.custom.add(f"{name} (control flow: write the gates out with Python loops instead)")
            continue
        problem = malformed(inst, index, position)
        if problem is not None:
            scan.shapes.append(problem)
            continue
        scan.two_qubit += len(inst.qubits) >= 2
        standard = inst.is_standard_gate()
        if not standard:
            (scan.impostors if name in allowed else scan.custom).add(name)
            continue
        scan.counts[name] += 1
        if name not in allowed:
            scan.forbidden[name] += 1
            continue
        for value in op.params:
            try:
                coefficients, _ = affine_form(value, scan.expressions)
            except AngleError as exc:
                qubits = ", ".join(str(index[q]) for q in inst.qubits)
                scan.angle_errors.append(f"{name} on qubit(s) {qubits} (instruction {position}): {exc}")
                continue
            scan.trainable.update(p for p, c in coefficients.items() if c != 0.0)
            scan.zeroed.update(p for p, c in coefficients.items() if c == 0.0)
    return scan


def _scan_errors(scan: _Scan, allowed: tuple[str, ...]) -> list[str]:
    errors = _limited(scan.shapes, "malformed instructions")
    if scan.forbidden:
        listed = ", ".join(f"{g} ({c}x)" for g, c in sorted(scan.forbidden.items()))
        errors.append(f"gates not allowed: {listed}; allowed gates: {', '.join(allowed)}")
    if scan.impostors:
        errors.append(f"instruction(s) named {_names(scan.impostors)} are not the standard Qiskit gates of "
                      f"that name (custom or modified copies, e.g. open controls); call qc.<gate>(...) directly")
    if scan.custom:
        errors.append(f"custom or composite instructions are not allowed: {_names(scan.custom)}; use only "
                      f"the allowed gates ({', '.join(allowed)}) directly (no to_gate()/to_instruction()/append of "
                      f"sub-circuits, no UnitaryGate)")
    if scan.non_unitary:
        errors.append(f"non-unitary instructions are not allowed: {_names(scan.non_unitary)}; the ansatz "
                      f"must be a unitary circuit (remove measure/measure_all/reset/initialize; the scorer "
                      f"measures the Hamiltonian itself)")
    return errors + _limited(scan.angle_errors)
