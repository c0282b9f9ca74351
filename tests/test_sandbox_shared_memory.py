"""Memory and disk the watchdogs could not see (issue 12.4/12.5): shared memory across processes, memfds, SysV IPC,
inotify, and directory trees deeper than PATH_MAX; in both isolation modes, checking the host afterwards."""

from __future__ import annotations

import glob
import mmap
import os
import signal
import tempfile
import time

import pytest
from _sandbox_util import MODES, config, hostile

from workers.evaluation.sandbox import ipc, isolation_status, run_candidate, tree
from workers.evaluation.sandbox.isolation import WORKDIR_PREFIX
from workers.evaluation.sandbox.procfs import _memory, memfd_bytes

MiB = 1 << 20


def host_shmem() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize("mode", MODES)
def test_shared_memory_memfds_sysv_and_inotify_are_refused_and_leave_nothing(mode):
    if not isolation_status().seccomp:
        pytest.skip("no seccomp filter on this architecture")
    shmem, objects = host_shmem(), ipc.objects(os.getuid())
    start = time.monotonic()
    result = run_candidate(hostile("shared_memory"), 3, config=config(mode, memory_bytes=512 * MiB))
    assert time.monotonic() - start < 60
    for attempt in ("SHARED", "MEMFD", "SYSV", "INOTIFY"):
        assert f"{attempt} REFUSED 1" in result.stdout, (attempt, result.stdout, result.error)  # EPERM
    assert result.status == "ok", result.error
    assert ipc.objects(os.getuid()) <= objects
    assert host_shmem() - shmem < 128 * MiB


def _child_holding(setup) -> int:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        keep = setup()  # noqa: F841 - held until the parent kills this child
        os.write(write_fd, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(read_fd, 1)
    os.close(read_fd)
    os.close(write_fd)
    return pid


def _shared_area():
    area = mmap.mmap(-1, 96 * MiB, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    for offset in range(0, len(area), 4096):
        area[offset] = 1
    return area


def _memfd():
    fd = os.memfd_create("hoard")
    os.posix_fallocate(fd, 0, 48 * MiB)
    return fd


@pytest.mark.parametrize("setup,minimum", [(_shared_area, 90 * MiB), (_memfd, 45 * MiB)])
def test_the_watchdog_counts_shared_memory_and_unmapped_memfds(setup, minimum):
    pid = _child_holding(setup)
    try:
        assert _memory(pid) + memfd_bytes(pid) >= minimum
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_tree_deeper_than_path_max_is_measured_and_removed_without_following_links(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    root = tmp_path / "tree"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(3000):
        os.mkdir("d" * 120, dir_fd=fd)
        child = os.open("d" * 120, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    out = os.open("data", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
    os.write(out, b"x" * (4 * MiB))
    os.close(out)
    os.symlink(str(outside), "link", dir_fd=fd)
    os.fchmod(fd, 0)
    os.close(fd)
    used, entries = tree.usage(str(root), max_entries=20_000)
    assert used >= 4 * MiB and entries == 3002
    assert tree.remove_tree(str(root))
    assert not root.exists() and outside.read_text() == "keep me"


@pytest.mark.parametrize("mode", MODES)
def test_a_3000_deep_tree_is_contained_and_the_next_run_on_the_slot_is_unharmed(mode):
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), WORKDIR_PREFIX + "*")))
    result = run_candidate(hostile("deep_tree"), 3, config=config(mode, max_disk_bytes=4 * MiB))
    if mode == "bwrap":  # a 4 MiB tmpfs: the writes fail, the candidate gives up
        assert result.status == "ok", result.error
    else:  # a host directory: the fd-relative walk sees the files 3000 levels down
        assert result.status == "resource", (result.status, result.error, result.stdout)
        assert "disk" in result.error
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), WORKDIR_PREFIX + "*"))) <= before
    benign = "from qiskit import QuantumCircuit\ndef create_ansatz(n):\n    return QuantumCircuit(n)\n"
    assert run_candidate(benign, 3, config=config(mode)).status == "ok"


@pytest.mark.parametrize("mode", MODES)
def test_the_runner_command_line_carries_no_host_paths_or_worker_pid(mode):
    code = ("import sys\nfrom qiskit import QuantumCircuit\nprint('ARGV', sys.argv)\n"
            "def create_ansatz(n):\n    return QuantumCircuit(n)\n")
    result = run_candidate(code, 3, config=config(mode))
    assert result.status == "ok", result.error
    argv = result.stdout.split("ARGV", 1)[1]
    assert str(os.getpid()) not in argv and "/tmp" not in argv and "sys_path" not in argv, argv
