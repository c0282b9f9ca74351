"""Static checks of a built circuit against a goal's limits, each failure with a message fit for the model.

Policy (what the scorer accepts):

- a ``QuantumCircuit`` on exactly ``goal.num_qubits`` qubits and **no classical bits**: the ansatz is a state
  preparation; the scorer measures the Hamiltonian itself;
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

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression

from .goals import Goal
from .results import VerificationResult
from .simulation.program import AngleError, affine_form

MAX_INSTRUCTIONS = 100_000
"""Instructions beyond which a circuit is refused before any per-gate work (a goal's depth limit is tighter)."""
MAX_PARAMETERS = 10_000
"""Distinct Parameters beyond which a circuit is refused before any per-gate work."""
NON_UNITARY = ("measure", "reset", "initialize", "delay", "store")
CONTROL_FLOW = ("if_else", "while_loop", "for_loop", "switch_case", "box", "break_loop", "continue_loop")
_MAX_MESSAGES = 5


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _limited(messages: list[str]) -> list[str]:
    if len(messages) <= _MAX_MESSAGES:
        return messages
    return messages[:_MAX_MESSAGES] + [f"... and {len(messages) - _MAX_MESSAGES} more angle problems"]


def _parameters_of(op) -> set:
    found: set = set()
    for value in getattr(op, "params", ()):
        if isinstance(value, ParameterExpression):
            found.update(value.parameters)
    return found


def _names(parameters) -> str:
    names = sorted(p.name for p in parameters)
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


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
        messages.append(f"Parameter(s) {_names(zeroed)} enter every angle they appear in with coefficient 0 "
                        f"(e.g. 0*theta + 0.3), so they cannot change the state; use each Parameter with a "
                        f"non-zero coefficient or remove it")
    phase = circuit.global_phase
    in_phase = set(phase.parameters) if isinstance(phase, ParameterExpression) else set()
    only_phase = in_phase - in_gates
    if only_phase:
        messages.append(f"Parameter(s) {_names(only_phase)} appear only in the global phase, where they cannot "
                        f"change the energy; remove them")
    if not trainable and not zeroed and not other_errors:
        messages.append("the circuit has no Parameters in any gate angle: every trainable angle must be a "
                        "qiskit.circuit.Parameter with a non-zero coefficient (e.g. theta = Parameter('theta_0'); "
                        "qc.ry(theta, 0)), and at least one is required")
    return messages


def verify_circuit(circuit: object, goal: Goal) -> VerificationResult:
    """Check ``circuit`` against ``goal``; never raises for anything a candidate can build."""
    if not isinstance(circuit, QuantumCircuit):
        return VerificationResult(ok=False, errors=(
            f"create_ansatz must return a qiskit QuantumCircuit; it returned {type(circuit).__name__}",))
    errors: list[str] = []
    n, allowed = goal.num_qubits, tuple(goal.allowed_gates)
    if circuit.num_qubits != n:
        errors.append(f"circuit has {_plural(circuit.num_qubits, 'qubit')}, expected {n}: "
                      f"create_ansatz(num_qubits) must build a circuit on exactly num_qubits qubits")
    if circuit.num_clbits:
        errors.append(f"circuit has {_plural(circuit.num_clbits, 'classical bit')}; the ansatz must be purely "
                      f"quantum: use QuantumCircuit(num_qubits) with no classical bits and no measurements "
                      f"(the scorer measures the Hamiltonian itself)")
    size = len(circuit.data)
    cap = min(MAX_INSTRUCTIONS, max(1, goal.max_depth) * max(1, circuit.num_qubits) * 2 + 1000)
    if size > cap:
        errors.append(f"circuit has {size} instructions; a circuit of depth at most {goal.max_depth} on "
                      f"{circuit.num_qubits} qubits has far fewer (at most {cap} are inspected)")
    if circuit.num_parameters > MAX_PARAMETERS:
        errors.append(f"circuit has {circuit.num_parameters} Parameters; at most {MAX_PARAMETERS} are accepted")
    if size > cap or circuit.num_parameters > MAX_PARAMETERS:
        return VerificationResult(ok=False, errors=tuple(errors), num_qubits=circuit.num_qubits)

    counts: collections.Counter = collections.Counter()
    forbidden: collections.Counter = collections.Counter()
    impostors: set[str] = set()
    non_unitary: set[str] = set()
    custom: set[str] = set()
    angle_errors: list[str] = []
    trainable: set = set()
    zeroed: set = set()  # Parameters seen with coefficient 0 (``0*t``): they cannot change anything
    in_gates: set = set()  # Parameters seen in any instruction (accepted or refused)
    expressions: dict = {}  # affine_form cache: a reused expression is checked once
    two_qubit = 0
    for position, inst in enumerate(circuit.data):
        op = inst.operation
        name = str(op.name)
        if name == "barrier":
            continue
        counts[name] += 1
        if len(inst.qubits) >= 2:
            two_qubit += 1
        in_gates.update(_parameters_of(op))
        if name in NON_UNITARY or name.startswith(("save_", "set_")):
            non_unitary.add(name)
            continue
        if name in CONTROL_FLOW:
            custom.add(f"{name} (control flow: write the gates out with Python loops instead)")
            continue
        standard = inst.is_standard_gate()
        if name in allowed and not standard:
            impostors.add(name)
            continue
        if not standard:
            custom.add(name)
            continue
        if name not in allowed:
            forbidden[name] += 1
            continue
        for value in op.params:
            try:
                coefficients, _ = affine_form(value, expressions)
            except AngleError as exc:
                qubits = ", ".join(str(circuit.find_bit(q).index) for q in inst.qubits)
                angle_errors.append(f"{name} on qubit(s) {qubits} (instruction {position}): {exc}")
                continue
            trainable.update(p for p, c in coefficients.items() if c != 0.0)
            zeroed.update(p for p, c in coefficients.items() if c == 0.0)

    if forbidden:
        listed = ", ".join(f"{g} ({c}x)" for g, c in sorted(forbidden.items()))
        errors.append(f"gates not allowed: {listed}; allowed gates: {', '.join(allowed)}")
    if impostors:
        errors.append(f"instruction(s) named {', '.join(sorted(impostors))} are not the standard Qiskit gates of "
                      f"that name (custom or modified copies, e.g. open controls); call qc.<gate>(...) directly")
    if custom:
        errors.append(f"custom or composite instructions are not allowed: {', '.join(sorted(custom))}; use only "
                      f"the allowed gates ({', '.join(allowed)}) directly (no to_gate()/to_instruction()/append of "
                      f"sub-circuits, no UnitaryGate)")
    if non_unitary:
        errors.append(f"non-unitary instructions are not allowed: {', '.join(sorted(non_unitary))}; the ansatz "
                      f"must be a unitary circuit (remove measure/measure_all/reset/initialize; the scorer "
                      f"measures the Hamiltonian itself)")
    errors.extend(_limited(angle_errors))

    phase = circuit.global_phase
    if not isinstance(phase, ParameterExpression) or not phase.parameters:
        try:
            affine_form(phase)
        except AngleError as exc:
            errors.append(f"global phase: {exc}")
    errors.extend(_parameter_messages(circuit, trainable, zeroed - trainable, in_gates, bool(errors)))

    depth = circuit.depth()
    if depth > goal.max_depth:
        errors.append(f"circuit depth is {depth}, the limit is {goal.max_depth}: use fewer layers or put gates on "
                      f"different qubits in the same layer")
    return VerificationResult(
        ok=not errors, errors=tuple(errors), num_qubits=circuit.num_qubits, depth=depth,
        num_parameters=len(trainable), gate_counts=dict(sorted(counts.items())), num_two_qubit_gates=two_qubit)
