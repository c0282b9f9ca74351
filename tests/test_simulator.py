"""Both engines against Qiskit's Statevector, finite differences and each other, on random circuits."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import XXPlusYYGate
from qiskit.quantum_info import SparsePauliOp, Statevector

from tests.ansatz_library import hea_ry_rz, tfim_hva
from workers.evaluation.errors import EvaluationError
from workers.evaluation.goals import get_goal
from workers.evaluation.simulation.engines import make_engine, resolve_engine
from workers.evaluation.simulation.program import Rotation, compile_circuit

PARAMS = [Parameter("a"), Parameter("b"), Parameter("c")]


def _reference_energy(circuit, hamiltonian, theta):
    return float(np.real(Statevector(circuit.assign_parameters(theta)).expectation_value(hamiltonian)))


def _finite_difference(circuit, hamiltonian, theta, h=1e-5):
    grad = np.zeros(len(theta))
    for k in range(len(theta)):
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        grad[k] = (_reference_energy(circuit, hamiltonian, up) - _reference_energy(circuit, hamiltonian, down)) / (2 * h)
    return grad


def _angle(draw):
    """An affine expression of shared parameters: theta, 2 theta, theta + phi, -theta/2, or a plain number."""
    a, b = draw(st.sampled_from(PARAMS)), draw(st.sampled_from(PARAMS))
    kind = draw(st.integers(0, 5))
    return [a, 2 * a, a + b, -a / 2, 0.7 * a - 1.3 * b + 0.4, draw(st.floats(-3, 3))][kind]


@st.composite
def random_circuits(draw, n=4):
    qc = QuantumCircuit(n)
    for _ in range(draw(st.integers(3, 14))):
        q = draw(st.permutations(range(n)))
        gate = draw(st.sampled_from(["rx", "ry", "rz", "u", "p", "r", "crx", "cry", "crz", "cp", "cu", "rzz", "rxx",
                                     "ryy", "rzx", "xxpyy", "h", "sx", "cx", "cz", "swap", "ccx", "t"]))
        if gate in ("rx", "ry", "rz", "p"):
            getattr(qc, gate)(_angle(draw), q[0])
        elif gate == "u":
            qc.u(_angle(draw), _angle(draw), _angle(draw), q[0])
        elif gate == "r":
            qc.r(_angle(draw), _angle(draw), q[0])
        elif gate in ("crx", "cry", "crz", "cp", "rzz", "rxx", "ryy", "rzx"):
            getattr(qc, gate)(_angle(draw), q[0], q[1])
        elif gate == "cu":
            qc.cu(_angle(draw), _angle(draw), _angle(draw), draw(st.floats(-1, 1)), q[0], q[1])
        elif gate == "xxpyy":
            qc.append(XXPlusYYGate(_angle(draw), _angle(draw)), [q[0], q[1]])
        elif gate in ("h", "sx", "t"):
            getattr(qc, gate)(q[0])
        elif gate == "ccx":
            qc.ccx(q[0], q[1], q[2])
        else:
            getattr(qc, gate)(q[0], q[1])
    # make every parameter appear at least once so the parameter order is fixed
    for k, p in enumerate(PARAMS):
        qc.ry(p, k % n)
    return qc


HAMILTONIAN = SparsePauliOp.from_sparse_list(
    [("ZZ", [0, 1], -1.0), ("X", [2], 0.7), ("XY", [1, 3], 0.4), ("YZ", [0, 2], -0.3), ("ZXZ", [1, 2, 3], 0.2)],
    num_qubits=4) + SparsePauliOp("IIII", 0.5)

SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(random_circuits(), st.integers(0, 2**31))
def test_statevector_energies_and_gradients_match_qiskit_and_finite_differences(circuit, seed):
    theta = np.random.default_rng(seed).uniform(-np.pi, np.pi, size=(3, 3))
    engine = make_engine(circuit, HAMILTONIAN, engine="statevector", kernel="compiled")  # others: next test
    energy, grad = engine.energies_and_gradients(theta)
    for row in range(3):
        assert energy[row] == pytest.approx(_reference_energy(circuit, HAMILTONIAN, theta[row]), abs=1e-10)
        assert grad[row] == pytest.approx(_finite_difference(circuit, HAMILTONIAN, theta[row]), abs=1e-6)
    assert engine.energies(theta) == pytest.approx(energy, abs=1e-12)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_circuits(), st.integers(0, 2**31))
def test_the_aer_engine_agrees_with_the_statevector_engine(circuit, seed):
    theta = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(2, 3))
    e1, g1 = make_engine(circuit, HAMILTONIAN, engine="statevector").energies_and_gradients(theta)
    e2, g2 = make_engine(circuit, HAMILTONIAN, engine="aer").energies_and_gradients(theta)
    assert e1 == pytest.approx(e2, abs=1e-10)
    assert g1 == pytest.approx(g2, abs=1e-10)


@SLOW
@given(random_circuits(), st.integers(0, 2**31))
def test_the_compiled_dense_and_numpy_kernels_agree_to_rounding(circuit, seed):
    theta = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(4, 3))
    results = [make_engine(circuit, HAMILTONIAN, kernel=kernel).angle_gradients(theta)
               for kernel in ("compiled", "dense", "numpy")]
    for energy, grads in results[1:]:
        assert energy == pytest.approx(results[0][0], abs=1e-12)
        assert grads == pytest.approx(results[0][1], abs=1e-12)


def test_a_shared_parameter_in_2theta_needs_the_chain_rule():
    theta = Parameter("theta")
    qc = QuantumCircuit(1)
    qc.rx(2 * theta, 0)
    qc.rx(theta, 0)
    hamiltonian = SparsePauliOp("Z")
    x = np.array([0.37])
    # the plain +-pi/2 shift of the Parameter is wrong for 2*theta (and for sharing): E = cos(3 theta)
    naive = (_reference_energy(qc, hamiltonian, x + np.pi / 2) - _reference_energy(qc, hamiltonian, x - np.pi / 2)) / 2
    exact = -3 * np.sin(3 * 0.37)
    assert abs(naive - exact) > 0.5
    for name in ("statevector", "aer"):
        _, grad = make_engine(qc, hamiltonian, engine=name).energies_and_gradients(x[None, :])
        assert grad[0, 0] == pytest.approx(exact, abs=1e-10)


def test_the_aer_engine_makes_one_estimator_call_per_gradient_batch():
    engine = make_engine(tfim_hva(4), get_goal("tfim-4").hamiltonian, engine="aer")
    m = engine.program.num_angles
    theta = np.random.default_rng(0).uniform(0, 6, size=(5, engine.program.num_parameters))
    engine.energies_and_gradients(theta)
    assert engine.calls == 1
    assert engine.executions == 5 * (1 + 2 * m)
    engine.energies(theta)
    assert engine.calls == 2


def test_standard_gates_compile_to_pauli_rotations_with_affine_rows():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2)
    qc.crx(a, 0, 1)
    qc.cp(2 * b, 0, 1)
    qc.u(a, b, -a / 2, 0)
    program = compile_circuit(qc)
    assert all(op.name in ("rx", "ry", "rz", "rxx", "ryy", "rzz", "rzx") for op in program.ops
               if isinstance(op, Rotation))
    assert program.parameters == (a, b)
    # crx(a) -> rx(a/2), rxx(-a/2); cp(2b) -> rzz(-b), rz(b), rz(b)
    assert sorted(np.abs(program.coefficients[:2, 0])) == [0.5, 0.5]
    assert np.all(np.isfinite(program.coefficients))


@pytest.mark.parametrize("build", [
    lambda qc: qc.measure_all(),
    lambda qc: qc.reset(0),
    lambda qc: qc.initialize([0, 1], 0),
])
def test_compilation_refuses_non_unitary_instructions(build):
    qc = QuantumCircuit(2)
    qc.ry(Parameter("t"), 0)
    build(qc)
    with pytest.raises(EvaluationError):
        compile_circuit(qc)


def test_batches_larger_than_a_chunk_give_the_same_numbers():
    circuit, hamiltonian = hea_ry_rz(10, 2), get_goal("tfim-10").hamiltonian
    theta = np.random.default_rng(3).uniform(0, 6, size=(9, circuit.num_parameters))
    big = make_engine(circuit, hamiltonian, chunk_elements=2**20).energies_and_gradients(theta)
    small = make_engine(circuit, hamiltonian, chunk_elements=2**10).energies_and_gradients(theta)
    assert big[0] == pytest.approx(small[0], abs=1e-12) and big[1] == pytest.approx(small[1], abs=1e-12)
    assert big[0][4] == pytest.approx(_reference_energy(circuit, hamiltonian, theta[4]), abs=1e-10)


def test_the_block_kernel_is_exact_on_twelve_qubits():
    circuit = hea_ry_rz(12, 2)
    theta = np.random.default_rng(5).uniform(0, 6, size=(1, circuit.num_parameters))
    lih = get_goal("lih").hamiltonian  # 12 qubits, hundreds of Pauli terms
    engine = make_engine(circuit, lih)
    assert engine._dense is None
    assert engine.energies(theta)[0] == pytest.approx(_reference_energy(circuit, lih, theta[0]), abs=1e-10)
    tfim = get_goal("tfim-12").hamiltonian
    grad = make_engine(circuit, tfim).energies_and_gradients(theta)[1]
    ref = make_engine(circuit, tfim, engine="aer").energies_and_gradients(theta)[1]
    assert grad == pytest.approx(ref, abs=1e-9)


def test_engine_names_resolve_and_unknown_names_are_refused():
    assert resolve_engine("auto") == resolve_engine(None) == "statevector"
    assert resolve_engine("AER") == "aer"
    with pytest.raises(EvaluationError, match="unknown engine 'gpu'"):
        resolve_engine("gpu")


def test_a_hamiltonian_of_the_wrong_width_is_refused():
    with pytest.raises(EvaluationError, match="Hamiltonian has 6 qubits"):
        make_engine(tfim_hva(4), get_goal("tfim-6").hamiltonian)


def _every_standard_gate_circuit() -> QuantumCircuit:
    """Each standard unitary gate once (fixed angles where it has any) between trainable rotations, on 5 qubits."""
    from qiskit.circuit.library import get_standard_gate_name_mapping

    qc, rng = QuantumCircuit(5), np.random.default_rng(11)
    thetas = iter(Parameter(f"t{k}") for k in range(200))
    for q in range(5):
        qc.ry(next(thetas), q)
        qc.rx(next(thetas), q)
        qc.rz(next(thetas), q)
    qc.rzz(next(thetas), 0, 3)
    qc.ryy(next(thetas), 1, 4)
    for name, gate in sorted(get_standard_gate_name_mapping().items()):
        if name in ("measure", "reset", "delay", "global_phase", "barrier") or gate.num_qubits > 5:
            continue
        gate = gate.base_class(*rng.uniform(-3, 3, len(gate.params))) if gate.params else gate
        qubits = [int(q) for q in rng.permutation(5)[:gate.num_qubits]]
        qc.append(gate, qubits)
        qc.ry(next(thetas), qubits[0])
        qc.rzx(next(thetas), qubits[-1], (qubits[-1] + 2) % 5)
    return qc


def test_every_standard_gate_has_a_compiled_path_that_matches_qiskit():
    circuit = _every_standard_gate_circuit()
    hamiltonian = SparsePauliOp.from_sparse_list([("ZZ", [0, 3], 0.8), ("XYZ", [1, 2, 4], 0.5), ("Y", [2], -0.6),
                                                  ("XX", [3, 4], 0.3)], num_qubits=5)
    theta = np.random.default_rng(2).uniform(0, 2 * np.pi, size=(2, circuit.num_parameters))
    compiled = make_engine(circuit, hamiltonian, kernel="compiled")
    kinds = {int(k) for k in compiled._gates.tape.ops[:, 0]}
    assert kinds == set(range(9))  # every tape encoding is exercised (see simulation/tape.py)
    energy, grad = compiled.energies_and_gradients(theta)
    numpy_energy, numpy_grad = make_engine(circuit, hamiltonian, kernel="numpy").energies_and_gradients(theta)
    for row in range(2):
        assert energy[row] == pytest.approx(_reference_energy(circuit, hamiltonian, theta[row]), abs=1e-12)
    some = np.random.default_rng(3).choice(circuit.num_parameters, 8, replace=False)
    for k in some:  # central differences of Qiskit's energy, for a sample of the parameters
        up, down = theta[0].copy(), theta[0].copy()
        up[k], down[k] = up[k] + 1e-5, down[k] - 1e-5
        difference = _reference_energy(circuit, hamiltonian, up) - _reference_energy(circuit, hamiltonian, down)
        assert grad[0, k] == pytest.approx(difference / 2e-5, abs=1e-6)
    assert energy == pytest.approx(numpy_energy, abs=1e-12) and grad == pytest.approx(numpy_grad, abs=1e-12)


def test_the_kernel_cache_is_keyed_by_every_module_the_compiled_kernels_use():
    """numba's own cache only watches the file defining a function; ours hashes every kernel module, so a module
    with kernels (or the tape encoding they read) that is missing from the hash would serve stale machine code."""
    import pathlib

    from workers.evaluation.simulation import jit_cache

    folder = pathlib.Path(jit_cache.__file__).parent
    users = {p.name for p in folder.glob("*.py") if "jit_cache import kernel" in p.read_text()}
    assert users >= {"jit.py", "jit_rot.py", "jit_fixed.py"}
    assert users | {"jit_cache.py", "tape.py"} <= set(jit_cache.SOURCES)
    assert pathlib.Path(jit_cache.CACHE_DIR).name == jit_cache._digest()
