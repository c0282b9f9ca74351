"""Reward hacks on goal sets (one program scored over several Hamiltonians), tried as a policy trained on the
reward would try them, through the real sandbox and cascade (the single-goal hacks: test_reward_hacks.py)."""

import dataclasses
import textwrap

import pytest

from workers.evaluation.cascade import EvaluationConfig, evaluate_code
from workers.evaluation.goals import get_goal

FAST = EvaluationConfig().with_knobs(bp_samples=60, restarts=2)
HEADER = "from qiskit import QuantumCircuit\nfrom qiskit.circuit import Parameter, ParameterVector\n"


def _code(body: str) -> str:
    return HEADER + textwrap.dedent(body)


# ---- goal sets whose members have different energy scales ---------------------------------------------------------
def test_a_goal_set_pays_its_worst_member_in_units_of_each_members_gap():
    """h2 (gap 0.02 Ha) beside heisenberg-4 (gap 4.0): a circuit stuck at the HF level on h2 (eps = 1, worth 0)
    has the smaller raw error, so a set that paid its largest raw error paid the partly solved heisenberg-4."""
    from workers.evaluation.rewards import normalised_error

    goal = get_goal("h2+heisenberg-4")
    code = _code("""
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            for q in range(0, num_qubits, 2):
                qc.x(q)
            k = 0
            for start in (0, 1):
                for q in range(start, num_qubits - 1, 2):
                    qc.rzz(Parameter(f't{k}'), q, q + 1)
                    qc.ry(Parameter(f'a{k}'), q)
                    qc.ry(Parameter(f'b{k}'), q + 1)
                    qc.cx(q, q + 1)
                    k += 1
            return qc
        """)
    result = evaluate_code(code, goal, config=dataclasses.replace(FAST, run_bp=False))
    assert result.status == "valid", result.errors
    eps = {m["name"]: normalised_error(m["error"], get_goal(m["name"])) for m in result.goal_set.members}
    assert eps["h2"] > 0.99 and eps["heisenberg-4"] < 0.9, eps  # HF level on h2, some progress on heisenberg-4
    assert result.goal_set.worst_member == "h2"
    assert result.reward.seed_reward == pytest.approx(max(0.0, 1 - max(eps.values())), abs=1e-9)
    assert result.reward.seed_reward < 0.01 and result.reward.shaped_reward < 0.11


# ---- goal sets: the barren-plateau check must see every member, not only the first --------------------------------
MIXED_SIZES = """
    import numpy as np

    def hva(n):
        qc = QuantumCircuit(n)
        qc.h(range(n))
        g, b = ParameterVector('g', n // 2), ParameterVector('b', n // 2)
        for layer in range(n // 2):
            for q in [*range(0, n, 2), *range(1, n, 2)]:  # even bonds, then odd bonds: depth 3 per layer
                qc.rzz(g[layer], q, (q + 1) % n)
            for q in range(n):
                qc.rx(b[layer], q)
        return qc

    def random_circuit(n, layers=16):
        rng = np.random.default_rng(n)
        qc = QuantumCircuit(n)
        qc.ry(np.pi / 4, range(n))
        t = ParameterVector('t', n * layers)
        for layer in range(layers):
            for q in range(n):
                getattr(qc, ('rx', 'ry', 'rz')[rng.integers(3)])(2 * t[layer * n + q], q)
            for q in range(layer % 2, n - 1, 2):
                qc.cz(q, q + 1)
        return qc

    def create_ansatz(num_qubits):
        return random_circuit(num_qubits) if num_qubits >= LARGE else hva(num_qubits)
    """


@pytest.mark.parametrize("large,verdicts", [(10, ("barren plateau", "not measurable")), (99, ("no barren plateau",))])
def test_a_goal_set_is_checked_for_barren_plateaus_at_every_member(large, verdicts):
    """tfim-6+10 was checked at the first member's sizes (4, 6, 8) only: a program that is an HVA there and a
    16-layer random circuit at 10 qubits was "no barren plateau" and paid 0.32 (seed 0.63), where tfim-10 alone
    flags it (0.10). The honest HVA at every size stays free of plateaus."""
    goal = get_goal("tfim-6+10")
    result = evaluate_code(_code(textwrap.dedent(MIXED_SIZES).replace("LARGE", str(large))), goal, config=FAST)
    assert result.status == "valid", result.errors
    assert result.bp.verdict in verdicts, result.bp.reason
    if large == 10:
        assert result.reward.shaped_reward <= 0.1 + 1e-9 and result.reward.seed_reward == 0.0
