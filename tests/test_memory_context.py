"""The memory context: best, diverse and failed candidates, within a length budget."""

import hashlib

import pytest

from scheduler.memory import MemoryRecord, build_memory_context, select

CODE = "from qiskit import QuantumCircuit\n\ndef create_ansatz(num_qubits):\n    return QuantumCircuit(num_qubits)\n"


def rec(i, *, error=None, status="valid", tq=4, depth=10, bp=False, errors=(), code=CODE, it=0, fp=None):
    return MemoryRecord(goal="tfim-6", num_qubits=6, status=status, code=code + f"# {i}\n",
                        code_sha256=hashlib.sha256(f"{i}".encode()).hexdigest(), error=error,
                        relative_error=None if error is None else error / 7.3, depth=depth, num_parameters=6,
                        two_qubit_gates=tq, gate_counts={"ry": 6, "cz": tq}, decay_rate=-0.1,
                        has_barren_plateau=bp, errors=tuple(errors), iteration=it, fingerprint=fp)


def test_empty_history_says_so():
    assert build_memory_context([]) == "No candidates evaluated yet for this goal."


def test_best_candidates_come_first_with_their_metrics_and_code():
    records = [rec(1, error=0.5), rec(2, error=0.01), rec(3, error=0.2)]
    text = build_memory_context(records)
    assert text.index("error 1.00e-02") < text.index("error 2.00e-01") < text.index("error 5.00e-01")
    assert "```python" in text and "# 2" in text  # the best one carries its code
    assert "two-qubit gates" in text and "depth 10" in text and "decay" in text


def test_failures_are_listed_with_their_messages():
    records = [rec(1, error=0.1), rec(2, status="invalid", errors=["circuit has 5 qubits, expected 6"], it=3),
               rec(3, status="error", errors=["NameError: name 'qc' is not defined"], it=2)]
    text = build_memory_context(records)
    assert "Recent failures to avoid:" in text
    assert "circuit has 5 qubits, expected 6" in text and "NameError" in text
    assert text.index("5 qubits") < text.index("NameError")  # most recent first


def test_diverse_pick_comes_from_another_structural_niche():
    records = [rec(i, error=0.01 * i, tq=4, depth=10) for i in range(1, 6)] + [rec(9, error=0.4, tq=40, depth=90)]
    best, picks, _ = select(records, top=3, diverse=2)
    assert [r.error for r in best] == [0.01, 0.02, 0.03]
    assert [r.two_qubit_gates for r in picks] == [40]  # not the 4th-best of the same niche


def test_duplicates_by_fingerprint_are_shown_once():
    records = [rec(1, error=0.1, fp="n:abc"), rec(2, error=0.1, fp="n:abc"), rec(3, error=0.3, fp="n:def")]
    best, _, _ = select(records)
    assert len(best) == 2


@pytest.mark.parametrize("budget", [200, 600, 1500, 3000])
def test_the_context_respects_its_budget(budget):
    records = [rec(i, error=0.01 * i, tq=i, depth=5 * i) for i in range(1, 30)]
    records += [rec(100 + i, status="invalid", errors=["x" * 300], it=i) for i in range(5)]
    text, full = build_memory_context(records, budget=budget), build_memory_context(records, budget=10**6)
    assert "error 1.00e-02" in text  # the best candidate survives every budget
    if len(full) <= budget:
        assert text == full  # nothing is cut when everything fits
    else:
        assert len(text) <= budget < len(full)


def test_barren_plateau_candidates_count_as_failures_not_best():
    records = [rec(1, error=0.001, bp=True), rec(2, error=0.2)]
    best, _, failed = select(records)
    assert [r.error for r in best] == [0.2]
    assert failed and failed[0].has_barren_plateau


def test_failure_messages_reach_the_prompt_without_escape_or_control_characters():
    records = [rec(1, error=0.1), rec(2, status="invalid", it=1,
                                      errors=["gate \x1b[2J\x1b]0;owned\x07evil\u202e name\x00 refused"])]
    text = build_memory_context(records)
    assert "gate evil name refused" in text
    assert not any(ch in text for ch in ("\x1b", "\x07", "\x00", "\u202e"))
