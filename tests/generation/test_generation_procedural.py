"""The procedural generator: valid programs for every built-in goal at every temperature, variety that grows with
temperature, parents mutated (never executed), goal limits and symmetries respected.

The programs are built here with ``build_circuits`` (an exec of OUR OWN template text in the test process, never of
a model's); the checks below are written independently of the generator's own ``violations``.
"""

import dataclasses
import json
import re
import statistics

import numpy as np
import pytest
from qiskit.quantum_info import Operator, Statevector

from workers.evaluation.barren import scaling_sizes
from workers.evaluation.cascade import prepare
from workers.evaluation.goals import get_goal
from workers.evaluation.verify import verify_circuit
from workers.generation.base import DEFAULT_TEMPERATURES, PromptRequest, candidate_seed
from workers.generation.errors import GenerationError
from workers.generation.extract import extract_code
from workers.generation.procedural import ProceduralGenerator, build_circuits, parent_genome, propose
from workers.generation.procedural_program import Genome, Writer
from workers.generation.prompts import render_prompt

FAMILIES = ("tfim", "heisenberg", "xxz", "xy")
TEMPERATURES = (0.0, 0.5, 0.7, 0.9, 1.2)


def lattice_goal_names():
    names = []
    for family in FAMILIES:
        for boundary, low in (("", 3), ("-open", 2)):
            names += [f"{family}{boundary}-{n}" for n in (*range(low, 11), 13, 16, 20)]
    return names


def assert_verifies(goal, code, sizes):
    """The project's verifier (workers.evaluation.verify) at the goal's size; at the scaling fit's other sizes the
    same checks on the resized goal (depth enforced only at sizes up to the goal's own, as the cascade does)."""
    circuits = build_circuits(code, sizes)
    for n, qc in circuits.items():
        target = goal if n == goal.num_qubits else goal.at_size(n)
        if n > goal.num_qubits:
            target = dataclasses.replace(target, max_depth=10**9)
        result = verify_circuit(qc, target)
        assert result.ok, f"{goal.name} at {n} qubits: {result.errors}"
    return circuits


@pytest.mark.parametrize("name", lattice_goal_names())
def test_every_program_verifies_for_every_lattice_goal_at_every_temperature_and_at_smaller_sizes(name):
    goal = get_goal(name)
    sizes = list(dict.fromkeys([goal.num_qubits] + [m for m in (goal.num_qubits - 2, goal.num_qubits - 4)
                                                    if m >= goal.min_qubits] + scaling_sizes(goal)))
    for i, temperature in enumerate(TEMPERATURES):
        program = propose(goal, temperature, seed=1000 + i)
        circuits = assert_verifies(goal, program.code, sizes)
        assert circuits[goal.num_qubits].depth() == program.depth


@pytest.mark.parametrize("name", ["h2", "lih"])
def test_every_program_verifies_for_the_molecules(name):
    goal = get_goal(name)
    for seed in range(4):
        for temperature in DEFAULT_TEMPERATURES:
            assert_verifies(goal, propose(goal, temperature, seed=seed).code, [goal.num_qubits])


@pytest.mark.parametrize("name", ["tfim-6", "heisenberg-open-5", "xxz-8", "xy-4", "h2"])
def test_programs_pass_the_real_sandbox_and_verification_at_every_size_the_cascade_builds(name):
    goal = get_goal(name)
    for i, temperature in enumerate(DEFAULT_TEMPERATURES):
        program = propose(goal, temperature, seed=50 + i)
        prepared = prepare(program.code, goal)
        assert prepared.result is None, prepared.result and prepared.result.errors
        assert prepared.verification.ok and prepared.verification.depth == program.depth
        expected = [goal.num_qubits] + ([n for n in scaling_sizes(goal) if n != goal.num_qubits]
                                        if goal.is_lattice else [])
        assert sorted(prepared.circuits) == sorted(expected)


def structure(code, goal):
    """Gate names and qubits in order, parameters ignored: two programs with equal structure are the same ansatz."""
    qc = build_circuits(code, [goal.num_qubits])[goal.num_qubits]
    return tuple((inst.operation.name, tuple(qc.find_bit(q).index for q in inst.qubits)) for inst in qc.data)


@pytest.mark.parametrize("name", ["tfim-8", "heisenberg-8", "h2"])
def test_higher_temperature_gives_more_distinct_structures(name):
    goal = get_goal(name)
    distinct = {t: len({structure(propose(goal, t, seed=s).code, goal) for s in range(40)}) for t in (0.5, 0.9)}
    assert distinct[0.5] >= 2
    assert distinct[0.9] > distinct[0.5] * 1.2, distinct


def genes(code):
    return json.loads(re.search(r"^# genome: (\{.*\})$", code, re.MULTILINE).group(1))


def test_temperature_is_mutation_strength_for_a_parent():
    goal = get_goal("xxz-8")
    parent = propose(goal, 0.5, seed=7).code

    def changed(temperature, seed):
        child = propose(goal, temperature, seed=seed, parents=[parent])
        assert child.parent == 0
        a, b = genes(parent), genes(child.code)
        return sum(a[k] != b[k] for k in a)

    low = statistics.mean(changed(0.3, s) for s in range(30))
    high = statistics.mean(changed(1.2, s) for s in range(30))
    assert 0 < low < high, (low, high)


def test_a_child_always_differs_from_its_parent():
    goal = get_goal("tfim-6")
    parent = propose(goal, 0.5, seed=3).code
    for seed in range(20):
        child = propose(goal, 0.1, seed=seed, parents=[parent])
        assert genes(child.code) != genes(parent)


def test_a_model_written_parent_is_read_for_its_gates_and_never_executed(tmp_path):
    marker = tmp_path / "parent-ran"
    parent = (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nfrom qiskit import QuantumCircuit\n"
              "from qiskit.circuit import Parameter\n\ndef create_ansatz(n):\n    qc = QuantumCircuit(n)\n"
              "    for q in range(n):\n        qc.rx(Parameter(f'a{q}'), q)\n        qc.rz(Parameter(f'b{q}'), q)\n"
              "    for q in range(n - 1):\n        qc.cx(q, q + 1)\n    return qc\n")
    assert parent_genome(parent) == Genome(kind="hea", rotations=("rx", "rz"), entangler="cx", layers=2)
    goal = get_goal("tfim-5")
    child = propose(goal, 0.5, seed=1, parents=[parent])
    assert not marker.exists()
    assert "pathlib" not in child.code and str(marker) not in child.code
    assert_verifies(goal, child.code, [5, 3])


def test_a_forged_genome_line_cannot_inject_code():
    forged = '# genome: {"kind": "hea", "rotations": ["ry); import os; os.system(\'x\')#"]}\n'
    assert parent_genome(forged) is None
    with pytest.raises(ValueError):
        Genome.from_dict({"kind": "hea", "layers": "2; import os"})


def test_same_seed_same_program_and_different_seeds_explore():
    goal = get_goal("heisenberg-6")
    assert propose(goal, 0.7, seed=5).code == propose(goal, 0.7, seed=5).code
    assert len({propose(goal, 0.9, seed=s).code for s in range(10)}) > 3


def test_number_conserving_programs_keep_the_particle_number():
    rng = np.random.default_rng(0)
    for name, weight in (("xy-6", 3), ("heisenberg-open-6", 3), ("h2", 2)):
        goal = get_goal(name)
        found = 0
        for seed in range(60):
            program = propose(goal, 0.9, seed=seed)
            if program.genome.kind != "number":
                continue
            found += 1
            qc = build_circuits(program.code, [goal.num_qubits])[goal.num_qubits]
            bound = qc.assign_parameters(rng.uniform(-np.pi, np.pi, qc.num_parameters))
            probs = Statevector(bound).probabilities()
            weights = np.array([i.bit_count() for i in range(len(probs))])
            assert probs[weights != weight].sum() < 1e-9, (name, program.genome)
        assert found > 0, f"no number-conserving program among 60 samples for {name}"


def test_the_givens_block_is_a_real_rotation_within_the_one_excitation_subspace():
    writer = Writer(["h", "rx", "rz", "rzz", "cx", "x", "ry"])
    name = writer.use("givens")
    text = "from math import pi\nfrom qiskit import QuantumCircuit\n\n" + "\n\n".join(writer.helpers.values())
    text += f"\n\ndef create_ansatz(n):\n    qc = QuantumCircuit(2)\n    {name}(qc, 0, 1, 0.8)\n    return qc\n"
    unitary = Operator(build_circuits(text, [2])[2]).data
    phase = unitary[0, 0]
    unitary = unitary / phase
    assert np.allclose(unitary.imag, 0, atol=1e-9)
    assert np.allclose(unitary[1:3, 1:3], [[np.cos(0.8), -np.sin(0.8)], [np.sin(0.8), np.cos(0.8)]], atol=1e-9) \
        or np.allclose(unitary[1:3, 1:3], [[np.cos(0.8), np.sin(0.8)], [-np.sin(0.8), np.cos(0.8)]], atol=1e-9)
    assert np.isclose(abs(unitary[0, 0]), 1) and np.isclose(abs(unitary[3, 3]), 1)


@pytest.mark.parametrize("gates", [["ry", "cx"], ["rx", "rz", "cz"], ["ry", "rz", "cx"], ["rx", "ry", "rzz"]])
def test_programs_use_only_the_goals_allowed_gates(gates):
    for name in ("tfim-6", "heisenberg-open-5", "xy-4"):
        goal = get_goal(name, allowed_gates=gates)
        for seed in range(6):
            for temperature in DEFAULT_TEMPERATURES:
                assert_verifies(goal, propose(goal, temperature, seed=seed).code, [goal.num_qubits])


def test_a_tight_depth_limit_is_respected():
    for name in ("heisenberg-8", "tfim-8", "lih"):
        goal = get_goal(name, max_depth=6)
        for seed in range(6):
            assert_verifies(goal, propose(goal, 0.9, seed=seed).code, [goal.num_qubits])


def test_a_goal_without_rotation_gates_gets_a_clear_error():
    goal = get_goal("tfim-4", allowed_gates=["h", "cx"])
    with pytest.raises(GenerationError, match="allows none of rx, ry, rz"):
        propose(goal, 0.7, seed=0)


def test_programs_are_formatted_like_a_model_answer_and_survive_the_stop_sequences():
    goal = get_goal("xxz-6")
    batch = ProceduralGenerator().generate([PromptRequest(goal, "ctx", seed=11)])[0]
    assert [c.temperature for c in batch.candidates] == list(DEFAULT_TEMPERATURES)
    assert [c.seed for c in batch.candidates] == [candidate_seed(11, i) for i in range(3)]
    assert batch.prompt == render_prompt(goal, "ctx") and batch.generator == "procedural"
    for c in batch.candidates:
        assert c.raw.startswith("```python\n") and extract_code(c.raw).code == c.code
        assert "\n\n\n" not in c.code and "```\n" not in c.code  # the seed's stop sequences would cut it
        qc = build_circuits(c.code, [6])[6]
        assert f"Parameters: {qc.num_parameters}\n" in c.code and f"Depth: {qc.depth()}\n" in c.code


def test_every_genome_field_round_trips_through_the_program_text():
    goal = get_goal("heisenberg-6")
    program = propose(goal, 0.9, seed=2)
    assert Genome.from_dict(genes(program.code)) == program.genome
    assert dataclasses.replace(program.genome) == parent_genome(program.code)


@pytest.mark.parametrize("name", ["xy-4", "xy-6", "xy-open-5"])
def test_programs_for_the_xy_model_have_parameters_that_change_the_energy(name):
    # XX/YY hopping from a computational basis state keeps the energy at 0 for every parameter value (sublattice
    # parity + real circuits): the generator must not start pure-hopping ansaetze from such a state.
    from workers.evaluation.liveness import constant_energy_message
    goal = get_goal(name)
    for seed in range(12):
        for temperature in DEFAULT_TEMPERATURES:
            code = propose(goal, temperature, seed=seed).code
            qc = build_circuits(code, [goal.num_qubits])[goal.num_qubits]
            assert constant_energy_message(qc, goal.hamiltonian) is None, code
