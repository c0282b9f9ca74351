"""The sandbox API: benign runs, per-size results, messages a model can learn from, configuration, isolation
status and fallback warnings (the hostile-QPY loader: test_qpy_guard.py)."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile

import pytest
from _sandbox_util import MODES, config, hostile
from qiskit import QuantumCircuit

from tests.ansatz_library import LAYERED
from workers.evaluation.errors import SandboxError
from workers.evaluation.sandbox import isolation_status, load_circuit, run_candidate
from workers.evaluation.sandbox.config import SandboxConfig, parse_bytes


def layered_reference(n: int) -> QuantumCircuit:
    namespace: dict = {}
    exec(LAYERED, namespace)  # noqa: S102 - trusted: our own test source
    return namespace["create_ansatz"](n)


def structure(circuit: QuantumCircuit) -> list:
    """Gates, qubit indices and parameter expressions as text (Parameters made elsewhere differ in their uuid)."""
    return [(inst.operation.name, [circuit.find_bit(q).index for q in inst.qubits],
             [str(p) for p in inst.operation.params]) for inst in circuit.data]


def candidate(body: str) -> str:
    return "from qiskit import QuantumCircuit\nimport os, sys\n\n" + body


# ------------------------------------------------------------------------------------------- benign runs


@pytest.mark.parametrize("mode", MODES)
def test_a_benign_candidate_returns_valid_qpy_for_every_size(mode):
    result = run_candidate(LAYERED, [6, 2, 4], config=config(mode))
    assert result.status == "ok", result.error
    assert result.isolation == mode
    assert list(result.circuits_qpy) == [6, 2, 4] and result.size_errors == {}
    for n, data in result.circuits_qpy.items():
        circuit = load_circuit(data)
        assert circuit.num_qubits == n and circuit.num_parameters == 2 * n
        assert structure(circuit) == structure(layered_reference(n))
    assert 0 < result.wall_seconds < 20


@pytest.mark.parametrize("mode", MODES)
def test_extra_sizes_that_fail_go_to_size_errors_while_the_goal_size_decides_the_status(mode):
    code = candidate('''
def create_ansatz(num_qubits):
    if num_qubits < 4:
        raise ValueError(f"need at least 4 qubits, got {num_qubits}")
    if num_qubits == 5:
        return None
    return QuantumCircuit(num_qubits)
''')
    result = run_candidate(code, [6, 2, 5, 4], config=config(mode))
    assert result.status == "ok"
    assert sorted(result.circuits_qpy) == [4, 6]
    assert result.size_errors[2].startswith("create_ansatz(2) raised ValueError: need at least 4 qubits, got 2")
    assert "(line 7: raise ValueError(" in result.size_errors[2]
    assert result.size_errors[5] == "create_ansatz(5) returned NoneType, expected QuantumCircuit"

    failed = run_candidate(code, [2, 6], config=config(mode))
    assert failed.status == "error"
    assert failed.error.startswith("create_ansatz(2) raised ValueError")
    assert failed.circuits_qpy == {}
    assert "Traceback" in failed.stderr


@pytest.mark.parametrize("mode", MODES)
def test_a_hang_at_an_extra_size_keeps_the_goal_circuit(mode):
    code = candidate('''
def create_ansatz(num_qubits):
    while num_qubits == 2:
        pass
    return QuantumCircuit(num_qubits)
''')
    result = run_candidate(code, [4, 2], config=config(mode, wall_seconds=4))
    assert result.status == "ok"
    assert list(result.circuits_qpy) == [4]
    assert "time limit" in result.size_errors[2]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("body", "expected"), [
    ("def create_ansatz(num_qubits):\n    return 42\n", "create_ansatz(3) returned int, expected QuantumCircuit"),
    ("def make(num_qubits):\n    return QuantumCircuit(num_qubits)\n", "does not define create_ansatz"),
    ("create_ansatz = 5\n", "create_ansatz is int, not a function"),
    ("def create_ansatz(num_qubits)\n    return QuantumCircuit(num_qubits)\n", "SyntaxError at line 4"),
    ("import not_a_module_anywhere\n", "ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    ("sys.exit(0)\n", "Importing your code called sys.exit(0)"),
    ("def create_ansatz(num_qubits):\n    sys.exit(3)\n", "create_ansatz(3) called sys.exit(3)"),
    ("def create_ansatz(num_qubits):\n    raise SystemExit\n", "create_ansatz(3) called sys.exit(None)"),
    ("def create_ansatz(num_qubits):\n    raise KeyboardInterrupt\n", "create_ansatz(3) raised KeyboardInterrupt"),
    ("def create_ansatz(num_qubits):\n    os._exit(0)\n", "exited (exit code 0) before create_ansatz returned"),
    ("def create_ansatz(num_qubits):\n    return create_ansatz(num_qubits)\n", "raised RecursionError"),
])
def test_every_failure_has_a_message_a_model_can_learn_from(mode, body, expected):
    result = run_candidate(candidate(body), 3, config=config(mode))
    assert result.status == "error"
    assert expected in result.error, result.error


@pytest.mark.parametrize("mode", MODES)
def test_an_oversized_circuit_is_a_resource_failure(mode):
    code = candidate('''
def create_ansatz(num_qubits):
    qc = QuantumCircuit(num_qubits)
    for _ in range(2000):
        qc.h(0)
    return qc
''')
    result = run_candidate(code, 3, config=config(mode, max_circuit_bytes=8192))
    assert result.status == "resource"
    assert "over the limit of 8192 bytes" in result.error


def test_code_over_the_size_limit_is_rejected_without_running():
    result = run_candidate("x = 1\n" * 400, 3, config=SandboxConfig(max_code_bytes=1024))
    assert result.status == "error" and "over the limit of 1024 bytes" in result.error
    assert result.isolation == ""  # nothing was started


@pytest.mark.parametrize("sizes", [0, -1, [], ["3"], [2.5], [True], [3, 2000]])
def test_sizes_must_be_positive_integers(sizes):
    with pytest.raises(ValueError, match="sizes"):
        run_candidate(LAYERED, sizes)


def test_duplicate_sizes_are_built_once():
    result = run_candidate(LAYERED, [4, 4, 2, 4], config=config("bwrap"))
    assert list(result.circuits_qpy) == [4, 2]


def test_the_fallback_leaves_no_directory_behind(monkeypatch):
    # a temp root of this test's own: other processes may run sandboxes in /tmp at the same time
    root = tempfile.mkdtemp(prefix="qmind-test-tmp-")
    os.chmod(root, 0o755)  # the sandbox's unprivileged uid must be able to reach its directory
    try:
        monkeypatch.setattr(tempfile, "tempdir", root)
        result = run_candidate(hostile("litter"), 2, config=config("rlimits"))
        assert result.status == "ok", result.error
        assert glob.glob(os.path.join(root, "qmind-sandbox-*")) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------- isolation status


def test_bubblewrap_isolation_is_available_on_this_host():
    status = isolation_status(SandboxConfig())
    assert status.bwrap, status.bwrap_reason
    assert status.mode == "bwrap" and status.seccomp
    assert "bubblewrap isolation" in status.summary()


def test_auto_falls_back_loudly_when_bubblewrap_is_missing(caplog):
    cfg = config("auto", bwrap_path="/nonexistent/bwrap")
    status = isolation_status(cfg)
    assert status.mode == "rlimits" and not status.bwrap
    assert "not found" in status.bwrap_reason
    assert "SANDBOX WARNING" in status.summary()
    with caplog.at_level(logging.WARNING, logger="qmind.sandbox"):
        result = run_candidate(LAYERED, 2, config=cfg)
    assert result.status == "ok" and result.isolation == "rlimits"
    assert any(r.levelno == logging.WARNING and "SANDBOX FALLBACK" in r.getMessage() for r in caplog.records)


def test_the_fallback_warns_every_time_it_is_used(caplog):
    with caplog.at_level(logging.WARNING, logger="qmind.sandbox"):
        for _ in range(2):
            run_candidate(LAYERED, 2, config=config("rlimits"))
    assert sum("SANDBOX FALLBACK" in r.getMessage() for r in caplog.records) == 2


def test_requiring_bubblewrap_where_it_is_missing_is_a_sandbox_error():
    with pytest.raises(SandboxError, match="bubblewrap is unusable"):
        run_candidate(LAYERED, 2, config=config("bwrap", bwrap_path="/nonexistent/bwrap"))


def test_an_unusable_interpreter_is_a_sandbox_error_not_a_candidate_failure():
    with pytest.raises(SandboxError, match="interpreter"):
        run_candidate(LAYERED, 2, config=config("rlimits", python="/nonexistent/python3"))


# ------------------------------------------------------------------------------------------- configuration


def test_every_config_field_has_a_one_line_help():
    helps = SandboxConfig.help()
    assert set(helps) >= {"wall_seconds", "cpu_seconds", "memory_bytes", "max_processes", "max_output_bytes",
                          "max_circuit_bytes", "isolation"}
    assert all(text and "\n" not in text for text in helps.values())


def test_the_defaults_are_the_documented_ones():
    cfg = SandboxConfig()
    assert (cfg.wall_seconds, cfg.memory_bytes, cfg.max_processes, cfg.max_output_bytes) == (30.0, 2 << 30, 64,
                                                                                             1 << 20)
    assert cfg.cpu_limit == 30.0 and cfg.isolation == "auto"


def test_byte_sizes_accept_the_usual_suffixes():
    assert [parse_bytes(t) for t in ("1048576", "1M", "1MiB", "2g", "512k", "1.5G")] == [
        1 << 20, 1 << 20, 1 << 20, 2 << 30, 512 << 10, 3 << 29]


@pytest.mark.parametrize("mode", MODES)
def test_the_standard_library_and_the_scientific_stack_import_inside_the_sandbox(mode):
    code = candidate('''
def create_ansatz(num_qubits):
    import cmath, decimal, functools, itertools, json, math, random, statistics
    import numpy as np
    import scipy.linalg, scipy.optimize
    from qiskit.circuit.library import efficient_su2
    from qiskit.quantum_info import SparsePauliOp
    angle = math.pi * float(decimal.Decimal("0.5")) + abs(cmath.exp(1j)) - 1
    print("EIG", round(float(np.linalg.eigvalsh(SparsePauliOp("ZZ").to_matrix().real)[0]), 6))
    qc = efficient_su2(num_qubits, reps=1)
    qc.rz(angle, 0)
    return qc
''')
    result = run_candidate(code, 3, config=config(mode))
    assert result.status == "ok", result.error
    assert "EIG -1.0" in result.stdout
    assert load_circuit(result.circuits_qpy[3]).num_parameters == 12


UID_BASE = 1_000_900_000  # a uid range of its own, so that the slot is surely reused


@pytest.mark.parametrize("mode", MODES)
def test_a_killed_worker_takes_its_sandbox_with_it(mode):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from _sandbox_util import marker, processes_named

    name = marker()
    code = (f"import ctypes, time\nctypes.CDLL(None).prctl(15, b'{name}', 0, 0, 0)\n"
            "def create_ansatz(n):\n    time.sleep(120)\n")
    paths = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
    script = (f"import sys; sys.path[:0] = {paths!r}\n"
              "from workers.evaluation.sandbox import run_candidate, SandboxConfig\n"
              f"run_candidate({code!r}, 3, config=SandboxConfig(isolation={mode!r}, wall_seconds=120, "
              f"uid_base={UID_BASE}, uid_slots=1))\n")
    worker = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not processes_named(name):
            assert time.monotonic() < deadline, "the sandboxed candidate never started"
            assert worker.poll() is None, "the worker died on its own"
            time.sleep(0.1)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + 5
        while processes_named(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_named(name) == []
    finally:
        worker.kill()
        worker.wait()
    # the killed worker could not clean up its directory (fallback); the next run on that uid does
    if os.geteuid() == 0:
        assert run_candidate(LAYERED, 2, config=config(mode, uid_base=UID_BASE, uid_slots=1)).status == "ok"
        left = [p for p in glob.glob(os.path.join(tempfile.gettempdir(), "qmind-sandbox-*"))
                if os.lstat(p).st_uid == UID_BASE]
        assert left == []

