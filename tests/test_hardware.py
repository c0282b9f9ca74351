"""The optional hardware stage: routed cost on a heavy-hex fake device and a seeded noisy energy with an error bar."""

import dataclasses
import time

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp, Statevector

from scheduler.baselines import hva_program
from workers.evaluation.cascade import EvaluationConfig, evaluate_code
from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal, goal_from_mapping, goal_from_spec
from workers.evaluation.goals.hardware_options import HardwareOptions, hardware_options
from workers.evaluation.rewards import energy_component, normalised_error

pytest.importorskip("qiskit_ibm_runtime", reason="the hardware stage needs the 'hardware' extra")

from workers.evaluation.hardware import local_noise_model, score_hardware
from workers.evaluation.simulation.noisy import OutOfTime, estimate_energy, measurement_groups

FAST = EvaluationConfig().with_knobs(bp_samples=40, restarts=1)


def ladder(n: int, *, ring: bool = False) -> QuantumCircuit:
    """RY layer, CX chain (closed into a ring when asked), RY layer."""
    theta = ParameterVector("t", 2 * n)
    qc = QuantumCircuit(n)
    for q in range(n):
        qc.ry(theta[q], q)
    for q in range(n - 1 + ring):
        qc.cx(q, (q + 1) % n)
    for q in range(n):
        qc.ry(theta[n + q], q)
    return qc


def test_shot_estimate_without_noise_agrees_with_the_statevector_in_every_pauli_basis():
    # X, Y and Z terms on every qubit: a wrong basis change (e.g. Y measured as X) moves the estimate by ~1
    h = SparsePauliOp.from_list([("XYZ", 0.7), ("YYI", -0.5), ("ZXX", 0.3), ("IZY", 0.9), ("XII", -0.4),
                                 ("III", 1.5)])
    qc = ladder(3).assign_parameters(np.linspace(0.3, 2.1, 6))
    exact = float(np.real(Statevector(qc).expectation_value(h)))
    est = estimate_energy(qc, h, [0, 1, 2], noise_model=None, shots=40_000, seed=3, max_seconds=60)
    assert est.groups == len(measurement_groups(h)[1]) >= 3
    assert 0 < est.stderr < 0.02
    assert abs(est.energy - exact) < 4 * est.stderr


def test_the_error_bar_shrinks_as_one_over_the_square_root_of_the_shots():
    h = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])
    qc = ladder(2).assign_parameters([0.4, 1.1, 0.2, 0.9])
    small = estimate_energy(qc, h, [0, 1], noise_model=None, shots=1_000, seed=0, max_seconds=60)
    large = estimate_energy(qc, h, [0, 1], noise_model=None, shots=16_000, seed=0, max_seconds=60)
    assert large.stderr == pytest.approx(small.stderr / 4, rel=0.15)


def test_a_chain_maps_onto_heavy_hex_without_swaps_but_a_ring_needs_them():
    goal = get_goal("tfim-6")
    line = score_hardware(ladder(6), goal, seed=0)
    ring = score_hardware(ladder(6, ring=True), goal, seed=0)
    assert line.backend == "fake_sherbrooke"
    assert line.routed_two_qubit_gates == 5 and line.active_qubits == 6
    assert set(line.routed_gate_counts) <= {"ecr", "rz", "sx", "x"}
    # heavy-hex has no 6-cycle: closing the ring costs SWAPs (3 ECR each) or extra qubits
    assert ring.routed_two_qubit_gates > 6
    assert line.noisy_energy is None and "VQE did not run" in line.not_measured


def test_noisy_energy_is_seeded_above_the_noiseless_one_and_says_how_many_shots():
    goal = get_goal("tfim-4")
    qc = ladder(4)
    theta = np.linspace(0.1, 0.8, qc.num_parameters)
    noiseless = float(np.real(Statevector(qc.assign_parameters(theta)).expectation_value(goal.hamiltonian)))
    a = score_hardware(qc, goal, theta, seed=5)
    b = score_hardware(qc, goal, theta, seed=5)
    assert a.noisy_energy == b.noisy_energy and a.noisy_stderr == b.noisy_stderr
    assert a.shots == 4000 and a.groups == 2 and a.method == "density_matrix"
    assert a.noisy_energy > noiseless + 3 * a.noisy_stderr  # device noise and readout errors cost energy
    assert a.noisy_error == pytest.approx(a.noisy_energy - goal.exact_energy)


def test_the_local_noise_model_covers_only_the_routed_qubits_renumbered():
    model = local_noise_model("fake_sherbrooke", [5, 6, 7])
    assert sorted(model.noise_qubits) == [0, 1, 2]
    assert "ecr" in model.noise_instructions and "measure" in model.noise_instructions


def test_past_its_time_budget_the_estimate_stops_and_reports_nothing_partial():
    h = SparsePauliOp.from_list([("ZZ", 1.0), ("XX", 0.5)])
    qc = ladder(2).assign_parameters([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(OutOfTime, match="budget of 1 s before measurement group 1 of 2"):
        estimate_energy(qc, h, [0, 1], noise_model=None, shots=100, seed=0, max_seconds=1.0,
                        start=time.perf_counter() - 2.0)


def test_too_many_routed_qubits_leave_the_noisy_energy_not_measured():
    goal = get_goal("tfim-4")
    qc = ladder(4)
    result = score_hardware(qc, goal, np.zeros(qc.num_parameters), seed=0,
                            options=HardwareOptions(max_active_qubits=3))
    assert result.noisy_energy is None and result.noisy_error is None
    assert "4 active physical qubits" in result.not_measured
    assert result.routed_two_qubit_gates == 3


def test_goal_files_choose_the_stage_and_its_options_are_validated():
    base = {"name": "tfim-hw-4", "family": "tfim", "num_qubits": 4}
    plain = goal_from_mapping(base)
    goal = goal_from_mapping({**base, "hardware": {"shots": 2000, "reward": True}})
    assert plain.hardware is None and goal.hardware == HardwareOptions(shots=2000, reward=True)
    assert goal.spec_hash != plain.spec_hash and "hardware" not in plain.to_spec()
    assert goal_from_spec(goal.to_spec()).hardware == goal.hardware
    assert goal.at_size(6).hardware == goal.hardware
    assert hardware_options(True) == HardwareOptions()
    for bad, fragment in [({"shots": 10}, "hardware.shots"), ({"backend": "ibm_real"}, "fake backend"),
                          ({"colour": 1}, "unknown hardware option"), ("yes", "true, false or a mapping")]:
        with pytest.raises(GoalError, match=fragment):
            goal_from_mapping({**base, "hardware": bad})


def test_the_cascade_records_the_hardware_stage_and_pays_it_only_when_asked():
    plain = get_goal("tfim-4")
    code = hva_program(plain)
    paid = dataclasses.replace(plain, hardware=HardwareOptions(reward=True, shots=2000))
    result = evaluate_code(code, paid, config=FAST)
    assert result.status == "valid" and result.stage == "done", result.errors
    hw = result.hardware
    assert hw.noisy_energy is not None and hw.noisy_stderr > 0 and hw.routed_two_qubit_gates > 0
    assert "hardware" in result.timings and result.to_cli_json()["hardware"]["shots"] == hw.shots
    paid_hw = result.reward.components["hardware"]
    assert paid_hw == pytest.approx(energy_component(normalised_error(hw.noisy_error, paid)))
    assert paid_hw < result.reward.components["energy"] == 1.0  # noise costs what the noiseless VQE reached
    unpaid = evaluate_code(code, plain, config=FAST)
    assert unpaid.hardware is None and "hardware" not in unpaid.reward.components
    assert unpaid.reward.shaped_reward > result.reward.shaped_reward  # noise costs reward only when asked
