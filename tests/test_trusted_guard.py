"""The trusted side never hangs or crashes on a hostile circuit: malformed instructions, unbounded angle
expressions, huge extra sizes, candidate text, and the guarded child that runs every trusted stage."""

import dataclasses
import os
import pathlib
import time

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import CircuitInstruction, Gate, Parameter, ParameterVector
from qiskit.circuit.library import CXGate, RYGate

from tests.ansatz_library import ry_cz
from workers.evaluation import results as R
from workers.evaluation.cascade import EvaluationConfig, Prepared, score
from workers.evaluation.goals import get_goal
from workers.evaluation.guard import GuardLimit, Limits, StageFailed, TrustedConfig, run_guarded
from workers.evaluation.stages import check_circuits, extra_size_goal, finish
from workers.evaluation.text import MAX_TEXT_CHARS, clean_text
from workers.evaluation.verify import verify_circuit

GOAL = get_goal("tfim-4")


def _errors(circuit, goal=GOAL) -> str:
    result = verify_circuit(circuit, goal)
    assert not result.ok
    return " | ".join(result.errors)


# ---------------------------------------------------------------- malformed instructions (private Qiskit API)


def test_a_two_qubit_gate_on_the_same_qubit_twice_is_refused_not_simulated():
    qc = ry_cz(4, 1)
    qc._append(CircuitInstruction(CXGate(), (qc.qubits[1], qc.qubits[1])))
    assert "acts on the same qubit more than once (qubits 1, 1)" in _errors(qc)


def test_a_gate_with_the_wrong_number_of_qubits_or_parameters_is_refused():
    qc = ry_cz(4, 1)
    qc._append(CircuitInstruction(CXGate(), (qc.qubits[0],)))
    assert "applied to 1 qubits but is a 2-qubit gate" in _errors(qc)
    qc = ry_cz(4, 1)
    gate = RYGate(Parameter("z"))
    gate.params.append(0.5)
    qc._append(CircuitInstruction(gate, (qc.qubits[2],)))
    assert "the standard gate has 1 qubits and 1 parameters" in _errors(qc)


@pytest.mark.parametrize("angle", [1e7, -1e300, 10**12])
def test_huge_numeric_angles_are_refused(angle):
    qc = ry_cz(4, 1)
    qc.rx(angle, 0)
    assert "must be at most" in _errors(qc)


def test_a_huge_coefficient_is_refused():
    qc = QuantumCircuit(4)
    qc.ry(Parameter("t") * 1e9, 0)
    assert "coefficient of t" in _errors(qc)


# ---------------------------------------------------------------- angle expressions: bounded cost


def _nested(levels: int):
    a, b = Parameter("a"), Parameter("b")
    e = a
    for _ in range(levels):
        e = (e * b + a) * (e - b)
    return e, a, b


@pytest.mark.parametrize("levels", [3, 4, 5])
def test_a_short_deeply_nested_polynomial_is_refused_within_a_second(levels):
    e, a, b = _nested(levels)
    qc = QuantumCircuit(4)
    qc.ry(e, 0)
    qc.ry(a, 1)
    qc.ry(b, 2)
    start = time.monotonic()
    text = _errors(qc)
    assert time.monotonic() - start < 1.0
    assert "not a linear function" in text or "characters long" in text


@pytest.mark.parametrize("declare", ["input", "var", "stretch"])
def test_classical_variables_and_stretches_are_refused_at_verification(declare):
    """An unused input variable passed verification and the barren-plateau check, then failed VQE's independent
    energy check with Qiskit's "Circuits with 'input' variables cannot yet be converted" as a scorer error."""
    import io

    from qiskit import qpy
    from qiskit.circuit.classical import expr, types

    from workers.evaluation.sandbox import load_circuit

    qc = ry_cz(4, 1)
    if declare == "input":
        qc.add_input("a", types.Uint(8))
    elif declare == "var":
        qc.add_var("b", expr.lift(True))
    else:
        qc.add_stretch("s")
    buf = io.BytesIO()
    qpy.dump(qc, buf)
    text = _errors(load_circuit(buf.getvalue()))
    assert "classical variable" in text and "purely quantum" in text, text


def test_a_non_affine_parametrised_global_phase_is_refused():
    t = Parameter("t")
    qc = ry_cz(4, 1)
    qc.ry(t, 0)
    qc.global_phase = t * t
    assert "global phase: the angle" in _errors(qc)


def test_an_affine_parametrised_global_phase_is_accepted():
    qc = ry_cz(4, 1)
    qc.global_phase = 2 * qc.parameters[0] + 0.5
    assert verify_circuit(qc, GOAL).ok


# ---------------------------------------------------------------- extra sizes get limits derived from the goal's


def test_extra_sizes_get_a_depth_limit_scaled_with_the_size():
    goal = get_goal("tfim-6")
    assert extra_size_goal(goal, 12).max_depth == 2 * goal.max_depth
    assert extra_size_goal(goal, 4).max_depth == goal.max_depth


def test_a_circuit_honest_at_the_goal_size_and_huge_at_an_extra_size_is_left_out_of_the_fit():
    goal = get_goal("tfim-4")
    huge = QuantumCircuit(8)
    theta = ParameterVector("t", 8 * 400)
    for layer in range(400):
        for q in range(8):
            huge.ry(theta[layer * 8 + q], q)
    start = time.monotonic()
    verification, passed, _fingerprint, refused, problem = check_circuits(
        {4: ry_cz(4, 2), 8: huge, 6: ry_cz(6, 2)}, goal, 0, R.SandboxResult(status="ok"))
    assert problem is None
    assert verification.ok and passed == (4, 6)
    assert "depth is 400" in refused[8] or "instructions" in refused[8]
    assert time.monotonic() - start < 10


# ---------------------------------------------------------------- candidate text is cleaned and capped


def test_the_text_cleaner_strips_escapes_and_control_characters_and_caps_the_length():
    hostile = "\x1b[31mred\x1b[0m \x1b]0;title\x07ok\x00\x08\u202e" + "x" * 10_000
    text = clean_text(hostile)
    assert text.startswith("red ok") and "\x1b" not in text and "\u202e" not in text
    assert len(text) <= MAX_TEXT_CHARS + 40 and "characters cut" in text
    assert clean_text("Traceback\n" + "y" * 5000 + "\nValueError: boom", keep="tail").endswith("ValueError: boom")


def test_640_custom_gates_with_escape_names_give_a_short_clean_message():
    qc = ry_cz(4, 1)
    for k in range(640):
        qc.append(Gate(f"\x1b[2J\x1b[31mevil{k}" + "A" * 2000, 1, []), [k % 4])
    result = verify_circuit(qc, GOAL)
    final = finish(R.STATUS_INVALID, GOAL, 0, "verify", {}, errors=result.errors, verification=result)
    text = " ".join(final.errors)
    assert "\x1b" not in text and "and 630 more" in text
    assert len(str(final.to_dict())) < 20_000
    assert all("\x1b" not in name for name in result.gate_counts)


# ---------------------------------------------------------------- the guarded child


def _sleep(seconds, *, progress):
    progress("bp")
    time.sleep(seconds)


def _allocate(gib, *, progress):
    return np.ones(int(gib * (1 << 30)) // 8).sum()


def _abort(*, progress):
    os.abort()


def _raise(*, progress):
    raise ValueError("boom \x1b[31m")


def _value(x, *, progress):
    return R.VerificationResult(ok=True, num_qubits=x, gate_counts={"ry": np.int64(3)}), np.float64(0.5)


def test_a_guarded_call_returns_its_value():
    verification, number = run_guarded(_value, 4, limits=Limits(20, 1 << 30))
    assert verification.num_qubits == 4 and verification.gate_counts == {"ry": 3} and number == 0.5


def test_a_hanging_stage_is_killed_at_its_wall_limit_with_the_stage_named():
    start = time.monotonic()
    with pytest.raises(GuardLimit, match=r"resource: scoring \(bp\) did not finish within its time limit of 1 s"):
        run_guarded(_sleep, 60, limits=Limits(1, 1 << 30, "scoring"))
    assert time.monotonic() - start < 5


def test_a_stage_that_needs_too_much_memory_is_stopped_and_the_worker_is_untouched():
    rss = int(pathlib.Path("/proc/self/statm").read_text().split()[1])
    with pytest.raises(GuardLimit, match="memory budget of 0.25 GiB") as info:
        run_guarded(_allocate, 8, limits=Limits(30, 1 << 28))
    assert info.value.what == "memory"
    assert int(pathlib.Path("/proc/self/statm").read_text().split()[1]) - rss < 50_000  # pages: the worker did not grow


def test_a_native_crash_and_an_exception_become_messages():
    with pytest.raises(GuardLimit, match=r"crashed \(SIGABRT\)"):
        run_guarded(_abort, limits=Limits(20, 1 << 30))
    with pytest.raises(StageFailed, match="ValueError: boom") as info:
        run_guarded(_raise, limits=Limits(20, 1 << 30))
    assert "\x1b" not in str(info.value)


def test_scoring_past_its_limit_is_a_resource_verdict_not_a_hang():
    goal = get_goal("tfim-4")
    circuit = ry_cz(4, 3)
    prepared = Prepared(goal, 0, circuit=circuit, circuits={4: circuit},
                        verification=verify_circuit(circuit, goal))
    config = EvaluationConfig(trusted=TrustedConfig(score_seconds=2)).with_knobs(bp_samples=100_000)
    start = time.monotonic()
    result = score(prepared, config=config)
    assert time.monotonic() - start < 10
    assert result.status == R.STATUS_RESOURCE and result.stage == "bp"
    assert result.errors[0].startswith("resource: scoring (bp) did not finish within its time limit of 2 s")
    assert result.reward.seed_reward == 0.0
    assert dataclasses.asdict(result)  # a complete, serialisable verdict


def _sparse_matrix(hamiltonian, *, progress):
    return hamiltonian.to_matrix(sparse=True).nnz


def test_qiskit_parallel_code_runs_in_a_guarded_child_after_the_parent_started_its_thread_pool():
    hamiltonian = get_goal("tfim-10").hamiltonian
    expected = hamiltonian.to_matrix(sparse=True).nnz  # starts Qiskit's rayon pool here, in the parent
    assert run_guarded(_sparse_matrix, hamiltonian, limits=Limits(20, 1 << 30)) == expected


# ---------------------------------------------------------------- score reuse is keyed exactly, over every size


def test_the_reuse_key_matches_renamed_copies_only_when_every_size_is_the_same_circuit():
    from workers.evaluation.fingerprint import reuse_key

    def renamed(circuit, prefix):
        return circuit.assign_parameters({p: Parameter(f"{prefix}{i}") for i, p in enumerate(circuit.parameters)})

    goal_size, extra = ry_cz(4, 2), ry_cz(6, 2)
    key = reuse_key({4: goal_size, 6: extra}, R.SCORER_VERSION)
    assert reuse_key({4: renamed(goal_size, "x"), 6: renamed(extra, "y")}, R.SCORER_VERSION) == key
    assert reuse_key({4: goal_size, 6: ry_cz(6, 3)}, R.SCORER_VERSION) != key  # same goal circuit, other extra size
    assert reuse_key({4: goal_size}, R.SCORER_VERSION) != key
    assert reuse_key({4: goal_size, 6: extra}, "another scorer") != key
    shifted = goal_size.copy()
    shifted.rz(1e-3, 0)  # a different circuit with (nearly) the same state at any one point
    assert reuse_key({4: shifted, 6: extra}, R.SCORER_VERSION) != key
