"""Reward hacks, tried as a policy trained on the reward would try them, through the real sandbox and cascade.

Each class of hack from issue 11 has several hostile examples; each must earn no more than the honest version.
"""

import dataclasses
import functools
import textwrap

import pytest

from workers.evaluation.cascade import EvaluationConfig, evaluate_code
from workers.evaluation.goals import get_goal

FAST = EvaluationConfig().with_knobs(bp_samples=60, restarts=2)
NO_SCORING = dataclasses.replace(FAST, run_bp=False, run_vqe=False)
HEADER = "from qiskit import QuantumCircuit\nfrom qiskit.circuit import Parameter, ParameterVector\n"


def _code(body: str) -> str:
    return HEADER + textwrap.dedent(body)


# ---- class 5: Parameters that do nothing ------------------------------------------------------------------------
DEAD_PARAMETERS = {
    "zero coefficient": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            t = Parameter('t')
            qc.ry(0 * t + 0.3, 0)
            for q in range(num_qubits - 1):
                qc.cx(q, q + 1)
            return qc
        """,
    "rz on |0>": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            for q in range(num_qubits):
                qc.rz(Parameter(f't{q}'), q)
            qc.h(0)
            return qc
        """,
    "rzz on a basis state": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.x(0)
            t = Parameter('t')
            for q in range(num_qubits - 1):
                qc.rzz(t, q, q + 1)
            return qc
        """,
    "rotation undone by its inverse": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.h(range(num_qubits))
            t = ParameterVector('t', num_qubits)
            for q in range(num_qubits):
                qc.ry(t[q], q)
                qc.ry(-t[q], q)
            return qc
        """,
    "zero coefficient beside a live Parameter": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            a, b = Parameter('a'), Parameter('b')
            qc.ry(a, 0)
            qc.ry(b - b + 0.1, 1)
            return qc
        """,
}


@pytest.mark.parametrize("label", sorted(DEAD_PARAMETERS))
def test_parameters_that_do_nothing_are_refused_with_a_message_that_says_so(label):
    goal = get_goal("tfim-4")
    result = evaluate_code(_code(DEAD_PARAMETERS[label]), goal, config=NO_SCORING)
    assert result.status == "invalid", (label, result.status, result.errors)
    text = " ".join(result.errors)
    assert "coefficient 0" in text or "no Parameter changes the energy" in text, text
    assert result.reward.seed_reward == 0.0


def test_a_parameter_in_a_refused_gate_is_not_called_a_global_phase_parameter():
    goal = get_goal("tfim-4")
    code = _code("""
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.ry(Parameter('a'), 0)
            qc.u(Parameter('b'), 0, 0, 1)
            return qc
        """)
    result = evaluate_code(code, goal, config=NO_SCORING)
    assert result.status == "invalid"
    assert any("gates not allowed: u" in e for e in result.errors)
    assert not any("global phase" in e for e in result.errors), result.errors


def test_a_live_circuit_with_a_parameter_that_helps_only_sometimes_is_accepted():
    goal = get_goal("tfim-4")
    code = _code("""
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.rz(Parameter('z'), 0)          # dead on its own
            qc.ry(Parameter('y'), 0)          # alive
            return qc
        """)
    result = evaluate_code(code, goal, config=NO_SCORING)
    assert result.status == "valid", result.errors


# ---- class 4: a reward scale that pays for the Hartree-Fock state ------------------------------------------------
def _hartree_fock_bits(goal) -> list[int]:
    from workers.evaluation.reference import _best_basis_state, _codes

    op = goal.hamiltonian.simplify()
    _, bits = _best_basis_state(_codes(op), op.coeffs.real)
    return [q for q, b in enumerate(bits) if b]


HF_PLUS_USELESS = {
    "ry on an empty orbital": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.x({occupied})
            qc.ry(Parameter('t'), {empty})
            return qc
        """,
    "ry pair that the optimiser sets to zero": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.x({occupied})
            t = Parameter('t')
            qc.ry(t, {empty})
            qc.ry(t, {occupied0})
            return qc
        """,
}


@pytest.mark.parametrize("name", ["h2", "lih"])
@pytest.mark.parametrize("label", sorted(HF_PLUS_USELESS))
def test_the_hartree_fock_state_plus_a_useless_parameter_earns_at_most_a_fifth(name, label):
    goal = get_goal(name)
    occupied = _hartree_fock_bits(goal)
    empty = next(q for q in range(goal.num_qubits) if q not in occupied)
    code = _code(HF_PLUS_USELESS[label].format(occupied=occupied, empty=empty, occupied0=occupied[0]))
    result = evaluate_code(code, goal, config=FAST)
    assert result.status == "valid", result.errors
    assert result.reward.seed_reward <= 0.2, (result.vqe.error, result.reward)
    if result.vqe is not None:  # (VQE is skipped when the barren-plateau check flags the circuit)
        # the seed's literal formula paid about 0.8 for this (issue 11.4); it is still recorded for comparison
        assert result.reward.seed_reward_literal > 0.7
    assert result.reward.shaped_reward <= 0.1 + 1e-9


def test_an_exact_givens_circuit_on_h2_still_earns_one():
    goal = get_goal("h2")
    code = _code("""
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            t = Parameter('t')
            qc.ry(t, 1)
            qc.cx(1, 3)
            qc.cx(1, 2)
            qc.cx(1, 0)
            qc.x([0, 2])
            return qc
        """)
    result = evaluate_code(code, goal, config=FAST)
    assert result.status == "valid" and result.vqe.error < 1e-8
    assert result.reward.seed_reward == pytest.approx(1.0, abs=1e-6)
    assert result.reward.shaped_reward > 0.9


def test_a_tfim8_circuit_at_one_and_a_half_percent_relative_error_is_paid():
    from workers.evaluation.results import STATUS_VALID, VerificationResult, VQEResult
    from workers.evaluation.rewards import compute_rewards

    goal = get_goal("tfim-8")
    error = 0.015 * abs(goal.exact_energy)
    vqe = VQEResult(energy=goal.exact_energy + error, exact_energy=goal.exact_energy, error=error,
                    relative_error=0.015, chemical_accuracy=None, below_exact=False, evaluations=1,
                    gradient_evaluations=1, seconds=0.0, restarts=1, seeds=(0,), success_fraction=1.0,
                    optimizer="L-BFGS-B")
    verification = VerificationResult(ok=True, num_qubits=8, depth=10, num_parameters=8, num_two_qubit_gates=8)
    reward = compute_rewards(STATUS_VALID, verification, None, vqe, goal)
    assert 0.3 < reward.seed_reward < 0.5 and reward.seed_reward_literal == 0.0


# ---- classes 1-3: the barren-plateau verdict ---------------------------------------------------------------------
DEEP_RANDOM = """
    import numpy as np

    def random_circuit(n, layers=24, scale=1.0):
        rng = np.random.default_rng(n)
        qc = QuantumCircuit(n)
        qc.ry(np.pi / 4, range(n))
        t = ParameterVector('t', n * layers)
        k = 0
        for layer in range(layers):
            for q in range(n):
                getattr(qc, ('rx', 'ry', 'rz')[rng.integers(3)])(scale * t[k], q)
                k += 1
            for q in range(layer % 2, n - 1, 2):
                qc.cz(q, q + 1)
        return qc
    """

BP_HACKS = {
    "angles multiplied by 2^(n/2)": """
        def create_ansatz(num_qubits):
            return random_circuit(num_qubits, scale=2 ** (num_qubits // 2))
        """,
    "damped angles at the extra sizes": """
        def create_ansatz(num_qubits):
            return random_circuit(num_qubits, scale=1.0 if num_qubits == GOAL else 0.05)
        """,
    "raises at the extra sizes": """
        def create_ansatz(num_qubits):
            if num_qubits != GOAL:
                raise ValueError('only the goal size')
            return random_circuit(num_qubits)
        """,
    "a shallow circuit at the extra sizes": """
        def create_ansatz(num_qubits):
            return random_circuit(num_qubits, layers=24 if num_qubits == GOAL else 1)
        """,
    "dead padding at the extra sizes": """
        def create_ansatz(num_qubits):
            qc = random_circuit(num_qubits)
            if num_qubits != GOAL:
                pad = QuantumCircuit(num_qubits)
                for k in range(40 * num_qubits):
                    pad.rz(Parameter(f'p{k}'), k % num_qubits)
                qc = pad.compose(qc)
            return qc
        """,
    "counts its calls": """
        CALLS = []

        def create_ansatz(num_qubits):
            CALLS.append(num_qubits)
            return random_circuit(num_qubits, scale=1.0 if len(CALLS) == 1 else 0.05)
        """,
}


@functools.cache
def _honest_deep_random():
    code = _code(textwrap.dedent(DEEP_RANDOM) + "\ndef create_ansatz(num_qubits):\n    return random_circuit(num_qubits)\n")
    return evaluate_code(code, get_goal("tfim-8"), config=FAST)


@pytest.mark.parametrize("label", sorted(BP_HACKS))
def test_barren_plateau_hacks_on_a_deep_random_circuit_earn_what_a_barren_plateau_earns(label):
    goal = get_goal("tfim-8")
    code = _code(textwrap.dedent(DEEP_RANDOM) + textwrap.dedent(BP_HACKS[label]).replace("GOAL", "8"))
    honest = _honest_deep_random()
    result = evaluate_code(code, goal, config=FAST)
    assert honest.bp.verdict == "barren plateau", honest.bp.reason
    assert result.status == "valid", result.errors
    assert result.bp.verdict in ("barren plateau", "not measurable"), result.bp.reason
    assert result.reward.shaped_reward <= honest.reward.shaped_reward + 1e-9
    assert result.reward.seed_reward == 0.0 and result.vqe is None


def test_a_shallow_circuit_that_raises_at_the_extra_sizes_is_not_measurable_and_paid_like_a_plateau():
    goal = get_goal("tfim-6")
    code = _code("""
        def create_ansatz(num_qubits):
            if num_qubits != 6:
                raise ValueError('built for 6 qubits only')
            qc = QuantumCircuit(num_qubits)
            t = ParameterVector('t', num_qubits)
            for q in range(num_qubits):
                qc.ry(t[q], q)
            return qc
        """)
    result = evaluate_code(code, goal, config=FAST)
    assert result.bp.verdict == "not measurable" and "built for 6 qubits only" in result.bp.reason
    assert result.reward.components["barren_plateau"] == 0.0 and result.vqe is None


def test_the_goal_size_is_not_always_built_first():
    from workers.evaluation.cascade import prepare

    goal = get_goal("tfim-6")
    code = _code("""
        CALLS = []

        def create_ansatz(num_qubits):
            CALLS.append(num_qubits)
            qc = QuantumCircuit(num_qubits)
            t = ParameterVector('t', num_qubits * len(CALLS))
            for k in range(len(t)):
                qc.ry(t[k], k % num_qubits)
            return qc
        """)
    positions = {prepare(code, goal, config=FAST).circuit.num_parameters // 6 for _ in range(12)}
    assert len(positions) >= 2, positions  # all 12 the same position: probability 2 * 3^-12


@pytest.mark.parametrize("name,builder", [("tfim-8", "tfim_hva"), ("tfim-6", "tfim_hva")])
def test_known_good_circuits_keep_their_verdicts(name, builder):
    from scheduler.baselines import hva_program

    goal = get_goal(name)
    result = evaluate_code(hva_program(goal), goal, config=FAST)
    assert result.bp.verdict == "no barren plateau", result.bp.reason
    assert result.vqe.error < 1e-6 and result.reward.seed_reward == pytest.approx(1.0, abs=1e-6)


# ---- the same rotation written several times: angle units must not count the copies -------------------------------
SPLIT_RANDOM = """
    import numpy as np

    def create_ansatz(n, layers=LAYERS, copies=COPIES):
        rng = np.random.default_rng(n)
        qc = QuantumCircuit(n)
        qc.ry(np.pi / 4, range(n))
        t = ParameterVector('t', n * layers)
        k = 0
        for layer in range(layers):
            for q in range(n):
                gate = getattr(qc, ('rx', 'ry', 'rz')[rng.integers(3)])
                for c in range(copies):  # the same total angle 2 t however many copies
                    gate(2 * t[k] / copies + SHIFT * (c - (copies - 1) / 2), q)
                k += 1
            for q in range(layer % 2, n - 1, 2):
                qc.cz(q, q + 1)
        return qc
    """


@pytest.mark.parametrize("copies,shift", [(2, 0.0), (3, 0.0), (3, 0.4)])
def test_a_random_circuit_whose_rotations_are_written_in_copies_is_still_a_barren_plateau(copies, shift):
    """rz(t) rz(t) is rz(2 t), but normalising the gradient by ||A[:, k]|| over the written copies (sqrt(m)) reported
    an m times larger variance: a 16-layer random circuit flagged as a plateau became "no barren plateau" with two
    copies (3.1x the random reference against 1.5x) and was paid 0.26 instead of 0.10."""
    goal = get_goal("tfim-8")
    layers = 48 // (copies + 1)

    def code(m: int, s: float) -> str:
        body = textwrap.dedent(SPLIT_RANDOM).replace("LAYERS", str(layers)).replace("COPIES", str(m))
        return _code(body.replace("SHIFT", repr(s)))

    honest = evaluate_code(code(1, 0.0), goal, config=FAST)
    assert honest.bp.verdict == "barren plateau", honest.bp.reason
    result = evaluate_code(code(copies, shift), goal, config=FAST)
    assert result.status == "valid", result.errors
    assert result.bp.verdict == "barren plateau", result.bp.reason
    assert result.reward.shaped_reward <= honest.reward.shaped_reward + 1e-9

