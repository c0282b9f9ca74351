"""Hostile candidates (tests/hostile/*.py), each in both isolation modes, each with its expected outcome: rejected,
or contained with no effect on the host, and the evaluating process (this one) unharmed."""

from __future__ import annotations

import os
import re
import resource
import signal
import time
import uuid

import pytest
from _sandbox_util import MODES, config, hostile, marker, processes_named

from workers.evaluation.errors import EvaluationError
from workers.evaluation.sandbox import load_circuit, run_candidate

pytestmark = pytest.mark.parametrize("mode", MODES)


@pytest.fixture
def host_targets(tmp_path):
    """Places on the host a candidate must never write to; each has a unique name."""
    tag = uuid.uuid4().hex[:10]
    paths = [str(tmp_path / f"pwned-{tag}"), f"/tmp/pwned-{tag}", f"/work/pwned-{tag}", f"/root/pwned-{tag}",
             f"/etc/pwned-{tag}", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                f"pwned-{tag}")]
    yield paths
    for path in paths:
        for suffix in ("", ".lnk"):
            if os.path.lexists(path + suffix):
                os.unlink(path + suffix)


def assert_nothing_written(paths):
    written = [p + s for p in paths for s in ("", ".lnk") if os.path.lexists(p + s)]
    assert written == [], f"the candidate changed the host: {written}"


# ------------------------------------------------------------------------------------------- time and CPU


def test_an_infinite_loop_is_stopped_as_a_timeout(mode):
    result = run_candidate(hostile("infinite_loop"), 3, config=config(mode, wall_seconds=4))
    assert result.status == "timeout"
    assert "time limit" in result.error
    assert result.wall_seconds < 8


def test_a_loop_that_swallows_every_exception_and_signal_is_still_stopped(mode):
    result = run_candidate(hostile("swallow_everything"), 3, config=config(mode, wall_seconds=4))
    assert result.status == "timeout"
    assert result.wall_seconds < 8


def test_the_cpu_limit_stops_a_busy_loop_before_the_wall_clock_does(mode):
    result = run_candidate(hostile("infinite_loop"), 3, config=config(mode, wall_seconds=20, cpu_seconds=2))
    assert result.status == "timeout"
    assert "CPU time" in result.error
    assert result.wall_seconds < 10


@pytest.mark.parametrize("how", ["signal", "exit"])
def test_a_faked_cpu_timeout_is_not_reported_as_one(mode, how):
    result = run_candidate(hostile("fake_timeout", how=how), 3, config=config(mode))
    assert result.status == "error", (result.status, result.error)
    assert "CPU time" not in result.error
    assert result.wall_seconds < 10


# ------------------------------------------------------------------------------------------- processes


def test_a_fork_bomb_is_contained_and_leaves_no_process_behind(mode):
    name = marker()
    result = run_candidate(hostile("fork_bomb", marker=name), 3, config=config(mode, wall_seconds=6))
    assert result.status in ("timeout", "resource")
    assert processes_named(name) == []


def test_the_process_limit_is_enforced_by_the_kernel(mode):
    name = marker()
    result = run_candidate(hostile("fork_counter", marker=name), 3, config=config(mode, max_processes=12))
    assert result.status == "ok", result.error
    forks = int(re.search(r"FORKS (\d+)", result.stdout).group(1))
    assert 1 <= forks < 12, result.stdout
    assert "BlockingIOError" in result.stdout  # fork failed with EAGAIN: RLIMIT_NPROC, not our loop bound
    assert processes_named(name) == []  # the sleeping children were killed when the run ended


def test_a_setsid_daemon_that_outlives_the_candidate_is_killed(mode):
    name = marker()
    result = run_candidate(hostile("setsid_daemon", marker=name), 3, config=config(mode))
    assert result.status == "ok", result.error
    if mode == "rlimits":  # no pid namespace: leaving the process group is refused instead
        assert "SETSID refused" in result.stdout
    else:
        assert "SETSID ok" in result.stdout
    assert processes_named(name) == []


def test_signals_to_the_parent_do_not_harm_the_evaluator(mode):
    before = os.getppid()
    result = run_candidate(hostile("kill_parent", test_pid=os.getpid()), 3, config=config(mode))
    assert result.status in ("ok", "error")
    assert "SENT test process KILL" not in result.stdout
    assert os.getppid() == before  # we (and our parent) are still here
    again = run_candidate(hostile("kill_parent", test_pid=os.getpid()), 3, config=config(mode))
    assert again.status in ("ok", "error")


# ------------------------------------------------------------------------------------------- memory and output


def test_a_memory_bomb_is_reported_as_a_resource_failure(mode):
    result = run_candidate(hostile("memory_bomb"), 3, config=config(mode, memory_bytes=512 << 20))
    assert result.status == "resource"
    assert "memory" in result.error.lower()


def test_memory_grabbed_in_steps_hits_the_limit_and_is_reported(mode):
    result = run_candidate(hostile("memory_creep"), 3, config=config(mode, memory_bytes=512 << 20))
    assert result.status == "resource"
    assert "MemoryError" in result.error


def test_memory_spread_over_many_processes_is_stopped_by_the_tree_wide_watchdog(mode):
    name = marker()
    result = run_candidate(hostile("memory_fork_bomb", marker=name), 3,
                           config=config(mode, memory_bytes=512 << 20, wall_seconds=30))
    assert result.status == "resource", (result.status, result.error)
    assert "processes" in result.error
    assert result.wall_seconds < 25
    assert processes_named(name) == []


def test_socket_buffers_cannot_hold_kernel_memory_outside_the_watchdog(mode):
    """Queued socket data is kernel memory no process's RSS shows: sockets are refused, socketpair included."""
    budget = 400 << 20  # per process; 3 processes, 1.2 GiB, over the 512 MiB (+256 MiB) limit if it worked
    result = run_candidate(hostile("socket_memory", budget=budget), 3,
                           config=config(mode, memory_bytes=512 << 20, wall_seconds=30))
    assert result.status == "ok", result.error
    assert result.stdout.count("REFUSED PermissionError QUEUED 0 PAIRS 0") == 3, result.stdout


def test_filling_the_disk_stops_at_the_private_directory_limit(mode):
    result = run_candidate(hostile("disk_filler"), 3, config=config(mode, max_disk_bytes=4 << 20))
    if mode == "bwrap":  # a tmpfs of 4 MiB: writes fail with ENOSPC, the candidate gives up
        assert result.status == "ok", result.error
        total = int(re.search(r"TOTAL (\d+)", result.stdout).group(1))
        assert total <= 4 << 20
    else:  # a host directory: the watchdog measures it and stops the run
        assert result.status == "resource", (result.status, result.error, result.stdout)
        assert "too much to disk" in result.error


def test_a_flood_of_empty_files_is_stopped_before_it_pins_kernel_memory(mode):
    """Empty files take inodes, not blocks: the tmpfs size cap never stops them, the entry count does."""
    result = run_candidate(hostile("inode_flood", seconds=8), 3, config=config(mode, wall_seconds=30))
    assert result.status == "resource", (result.status, result.error, result.stdout)
    assert "too much to disk" in result.error and "files" in result.error
    assert result.wall_seconds < 8


@pytest.mark.parametrize("program", ["flood_stdout", "flood_stderr"])
def test_flooding_the_output_is_capped_and_stops_the_run(mode, program):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run_candidate(hostile(program), 3, config=config(mode, max_output_bytes=256 << 10, wall_seconds=15))
    assert result.status == "resource"
    assert "printed more than" in result.error
    kept = len(result.stdout.encode()) + len(result.stderr.encode())
    assert kept < (256 << 10) + 1024
    assert result.wall_seconds < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 * 1024  # KiB: < 64 MiB


def test_reading_stdin_gets_end_of_file_instead_of_hanging(mode):
    result = run_candidate(hostile("read_stdin"), 3, config=config(mode, wall_seconds=10))
    assert result.status == "error"
    assert "STDIN ''" in result.stdout
    assert "EOFError" in result.error
    assert result.wall_seconds < 8


# ------------------------------------------------------------------------------------------- escapes


def test_shelling_out_runs_no_program(mode, host_targets):
    result = run_candidate(hostile("shell_out", host_paths=host_targets), 3, config=config(mode))
    assert result.status == "ok", result.error
    assert "execv failed PermissionError" in result.stdout
    assert "run failed PermissionError" in result.stdout
    assert_nothing_written(host_targets)


def test_raw_system_calls_through_ctypes_are_refused(mode):
    result = run_candidate(hostile("ctypes_syscalls"), 3, config=config(mode))
    assert result.status == "ok", result.error
    calls = {m.group(1): (m.group(2), m.group(3))
             for m in re.finditer(r"CALL (\S+) (-?\d+|exception) ?(\d*)", result.stdout)}
    assert len(calls) == 16, result.stdout
    for name, (value, err) in calls.items():
        assert value == "-1", f"{name} succeeded inside the sandbox: {value}"
    assert calls["unshare_user"][1] == "1" and calls["mount"][1] == "1"  # EPERM from the filter
    assert calls["setuid_root"][1] == "1"


def test_a_ctypes_segfault_is_an_error_and_harmless(mode):
    result = run_candidate(hostile("ctypes_segfault"), 3, config=config(mode))
    assert result.status == "error"
    assert "SIGSEGV" in result.error


def test_scribbling_over_interpreter_memory_only_breaks_the_sandboxed_process(mode):
    result = run_candidate(hostile("ctypes_scribble"), 3, config=config(mode, wall_seconds=10))
    assert result.status in ("ok", "error", "timeout")
    assert 1 + 1 == 2 and int("1") == 1  # this interpreter's small-int cache is untouched


def test_subclasses_escapes_reach_nothing(mode, host_targets):
    result = run_candidate(hostile("subclasses_escape", host_paths=host_targets), 3, config=config(mode))
    assert result.status == "ok", result.error
    assert "WROTE" not in result.stdout
    assert_nothing_written(host_targets)


def test_writes_outside_the_private_temp_dir_never_reach_the_host(mode, host_targets):
    name = marker()
    result = run_candidate(hostile("write_outside", host_paths=host_targets, marker=name), 3, config=config(mode))
    assert result.status == "ok", result.error
    assert "private temp dir is writable" in result.stdout
    assert_nothing_written(host_targets + [f"/{name}", f"/root/{name}"])


def test_the_environment_and_other_processes_secrets_are_invisible(mode, monkeypatch):
    secret = "s3cret-" + uuid.uuid4().hex
    monkeypatch.setenv("QMIND_TEST_SECRET", secret)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://user:{secret}@db/prod")
    monkeypatch.setenv("REDIS_URL", f"redis://:{secret}@cache:6379/0")
    result = run_candidate(hostile("read_environment", test_pid=os.getpid()), 3, config=config(mode))
    assert result.status == "ok", result.error
    assert secret not in result.stdout + result.stderr
    env = result.stdout.split("ENV ", 1)[1].split("\n", 1)[0]
    assert "QMIND" not in env and "DATABASE" not in env and "REDIS" not in env
    assert re.search(rf"DENIED {os.getpid()} environ", result.stdout)


def test_proc_shows_only_the_sandbox(mode):
    result = run_candidate(hostile("read_proc"), 3, config=config(mode))
    assert result.status == "ok", result.error
    assert "SAW HOST PROCESS" not in result.stdout
    if mode == "bwrap":
        count = int(re.search(r"PIDS (\d+)", result.stdout).group(1))
        assert 1 <= count <= 4  # bwrap's init and the interpreter
        assert "INIT b'/usr/bin/bwrap'" in result.stdout or "INIT b'bwrap'" in result.stdout
    else:
        assert "LISTING DENIED" in result.stdout


@pytest.mark.integration
def test_local_redis_and_postgresql_are_unreachable(mode):
    redis = pytest.importorskip("redis")
    key = f"qmind-sandbox-sentinel-{uuid.uuid4().hex}"
    client = redis.Redis(host="127.0.0.1", port=6379, db=14, socket_timeout=5)
    client.set(key, "intact", ex=600)
    try:
        result = run_candidate(hostile("network", redis_key=key), 3, config=config(mode))
        assert result.status == "ok", result.error
        assert "CONNECTED" not in result.stdout, result.stdout
        assert result.stdout.count("FAILED") == 8
        assert client.get(key) == b"intact"
    finally:
        client.delete(key)


# ------------------------------------------------------------------------------------------- cheating


def test_monkeypatching_stays_inside_the_sandbox_and_the_circuit_is_just_a_circuit(mode):
    import numpy
    import scipy.optimize
    from qiskit import QuantumCircuit

    depth_before, eig_before, min_before = QuantumCircuit.depth, numpy.linalg.eigvalsh, scipy.optimize.minimize
    result = run_candidate(hostile("monkeypatch"), 4, config=config(mode))
    assert result.status == "ok", result.error
    circuit = load_circuit(result.circuits_qpy[4])
    assert type(circuit) is QuantumCircuit
    reference = QuantumCircuit(4)
    theta = circuit.parameters[0]
    for _layer in range(3):
        for q in range(4):
            reference.ry(theta, q)
        for q in range(3):
            reference.cx(q, q + 1)
    assert circuit == reference
    assert circuit.depth() == reference.depth() > 1 and circuit.num_parameters == 1
    assert circuit.metadata == {}  # nothing the candidate wrote about itself survives
    assert (QuantumCircuit.depth, numpy.linalg.eigvalsh, scipy.optimize.minimize) == (
        depth_before, eig_before, min_before)


def test_a_forged_result_frame_is_caught_by_the_loader(mode):
    result = run_candidate(hostile("qpy_forgery"), 3, config=config(mode))
    # the runner may refuse the run outright (status "error"); whatever frame came back must never load
    assert result.status in ("ok", "error"), result
    qpy = (result.circuits_qpy or {}).get(3)
    assert result.status == "error" or qpy is not None, result
    if qpy is not None:
        with pytest.raises(EvaluationError, match="100000000 qubits"):
            load_circuit(qpy)


def test_the_evaluator_is_unharmed_after_the_hostile_runs(mode):
    fds_before = len(os.listdir("/proc/self/fd"))
    limits_before = [resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC,
                                                    resource.RLIMIT_CPU, resource.RLIMIT_NOFILE)]
    cwd, env = os.getcwd(), dict(os.environ)
    sigint = signal.getsignal(signal.SIGINT)  # SIG_IGN already when pytest was started in the background by a shell
    for program in ("kill_parent", "ctypes_segfault", "read_stdin"):
        run_candidate(hostile(program, test_pid=os.getpid()), 3, config=config(mode))
    time.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert [resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU,
                                            resource.RLIMIT_NOFILE)] == limits_before
    assert (os.getcwd(), dict(os.environ)) == (cwd, env)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no zombie children left behind
    assert signal.getsignal(signal.SIGINT) == sigint
