"""Transfer across a family: one program scored over every member of a goal set (``goals/goal_set.py``).

The sandbox builds the program at every member's size (and the held-out size); each member circuit must pass the
member's own verification (width, gates, depth limit) or the candidate is ``invalid``. VQE then runs on every
member with the same settings and seed. The set's VQE result is the worst member's: the largest error in units of
that member's own gap between the best product state and the ground energy (the reward's eps, so members with
different energy scales compare); the ranking, ``--target-error`` and the reward see that worst case; the mean is
reported beside it. A member below its exact energy makes the whole candidate ``flagged``.

Lattice sets are also scored at ``extrapolate_to``, a size larger than every member: the circuit the program
builds there is optimised by the same VQE and its error reported as the extrapolation error. It is never paid and
never fails the candidate (a program that cannot build or verify there gets a note instead).
"""

from __future__ import annotations

import dataclasses

from qiskit import QuantumCircuit

from .barren import check_barren_plateau, scaling_sizes
from .errors import EvaluationError
from .goals import Goal
from .results import GoalSetResult, SandboxResult, VQEResult
from .rewards import normalised_error
from .verify import verify_circuit
from .vqe import VQESettings, score_vqe


def set_sizes(goal: Goal) -> list[int]:
    """Every size the sandbox must build for a goal set: its members' and the held-out one."""
    sizes = [m.num_qubits for m in goal.members]
    if goal.extrapolate_to is not None:
        sizes.append(goal.extrapolate_to)
    return list(dict.fromkeys(sizes))


def bp_goals(goal: Goal) -> list[Goal]:
    """The goals whose barren-plateau check a candidate must pass: a goal set's every member (each on its own
    Hamiltonian and sizes), any other goal itself."""
    return list(goal.members) if goal.is_set else [goal]


def bp_sizes(goal: Goal, *, max_qubits: int) -> list[int]:
    """Every size the barren-plateau checks of ``bp_goals(goal)`` need built (lattice goals: their scaling sizes)."""
    sizes = [g.num_qubits for g in bp_goals(goal)]
    for g in bp_goals(goal):
        if g.is_lattice:
            sizes += scaling_sizes(g, max_qubits=max_qubits)
    return list(dict.fromkeys(sizes))


def check_every_barren_plateau(circuits: dict[int, QuantumCircuit], goal: Goal, **options):
    """``check_barren_plateau`` for a goal, or for every member of a goal set: a set is free of barren plateaus only
    when every member is (a set checked on its first member alone paid "no barren plateau" for a program that was a
    plateau at a larger member). Returns the first member's result that is not "no barren plateau", else the
    largest member's."""
    results = [(g, check_barren_plateau(circuits, g, **options)) for g in bp_goals(goal)]
    for member, result in results:
        if result.has_barren_plateau:
            if not goal.is_set:
                return result
            return dataclasses.replace(result, reason=f"member {member.name}: {result.reason}")
    return max(results, key=lambda gr: gr[0].num_qubits)[1]


def member_problem(circuits: dict[int, QuantumCircuit], box: SandboxResult, goal: Goal) -> str | None:
    """Why the program cannot be scored on every member (a message for the model), or None."""
    for member in goal.members:
        n = member.num_qubits
        circuit = circuits.get(n)
        if circuit is None:
            why = box.size_errors.get(n) or "its circuit could not be read or verified"
            return f"goal set {goal.name}: create_ansatz({n}) for member {member.name} failed: {why}"
        verification = verify_circuit(circuit, member)
        if not verification.ok:
            return f"goal set {goal.name}, member {member.name} ({n} qubits): " + "; ".join(verification.errors)
    return None


def _member_row(member: Goal, vqe: VQEResult) -> dict:
    return {"name": member.name, "num_qubits": member.num_qubits, "energy": vqe.energy,
            "exact_energy": vqe.exact_energy, "error": vqe.error, "success_fraction": vqe.success_fraction}


def _extrapolation(circuits: dict, goal: Goal, **vqe_options) -> dict:
    n = goal.extrapolate_to
    if n is None:
        return {}
    target = goal.members[0].at_size(n)
    circuit = circuits.get(n)
    if circuit is None:
        return {"extrapolation_qubits": n, "extrapolation_note": f"create_ansatz({n}) did not build a circuit "
                                                                  f"that could be read or verified"}
    if not verify_circuit(circuit, dataclasses.replace(target, max_depth=10**9)).ok:
        return {"extrapolation_qubits": n, "extrapolation_note": f"the {n}-qubit circuit failed verification"}
    try:
        vqe = score_vqe(circuit, target, **vqe_options)
    except EvaluationError as exc:
        return {"extrapolation_qubits": n, "extrapolation_note": f"VQE at {n} qubits failed: {exc}"}
    return {"extrapolation_qubits": n, "extrapolation_error": vqe.error,
            "extrapolation_exact_energy": vqe.exact_energy}


def score_set(circuits: dict[int, QuantumCircuit], goal: Goal, *, seed: int, engine: str,
              settings: VQESettings | None = None) -> tuple[VQEResult, GoalSetResult, VQEResult]:
    """(the VQE result the cascade judges: the worst member's, or a flagged one's; the set's summary; the first
    member's own result, whose parameters belong to the goal's own circuit)."""
    options = {"seed": seed, "engine": engine, "settings": settings}
    results = [(m, score_vqe(circuits[m.num_qubits], m, **options)) for m in goal.members]
    # worst in units of each member's own gap (the reward's eps), not in raw energy: members' energy scales differ
    # (h2+heisenberg-4: 0.02 Ha vs 4.0), and a raw maximum would pay a poor h2 as the good heisenberg-4
    worst_member, worst = max(results, key=lambda mv: normalised_error(mv[1].error, mv[0]))
    flagged = [v for _, v in results if v.below_exact]
    errors = [v.error for _, v in results]
    summary = GoalSetResult(members=tuple(_member_row(m, v) for m, v in results),
                            mean_error=sum(errors) / len(errors), worst_error=worst.error,
                            worst_member=worst_member.name, **_extrapolation(circuits, goal, **options))
    return (flagged[0] if flagged else worst), summary, results[0][1]
