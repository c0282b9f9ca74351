"""Per-run unprivileged uids of a root worker: one uid per concurrent run, none that still owns processes."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
import re
import time

import pytest
from _sandbox_util import MODES, config

from workers.evaluation.sandbox import run_candidate
from workers.evaluation.sandbox.config import SandboxConfig
from workers.evaluation.sandbox.isolation import claim_slot


def candidate(body: str) -> str:
    return "from qiskit import QuantumCircuit\nimport os, sys\n\n" + body


@pytest.mark.parametrize("mode", MODES)
def test_the_candidate_runs_under_a_private_unprivileged_uid_without_capabilities(mode):
    if os.geteuid() != 0:
        pytest.skip("per-slot uids are used only when the worker runs as root")
    code = candidate('''
import ctypes
def create_ansatz(num_qubits):
    hdr = ctypes.create_string_buffer(bytes(8)); hdr[0:4] = (0x20080522).to_bytes(4, "little")
    data = (ctypes.c_uint32 * 6)()
    ctypes.CDLL(None).capget(hdr, data)
    print("IDS", os.getresuid(), os.getresgid(), os.getgroups(), "CAPS", list(data))
    return QuantumCircuit(num_qubits)
''')
    cfg = config(mode)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_candidate(code, 3, config=cfg), range(2)))
    uids = []
    for result in results:
        assert result.status == "ok", result.error
        m = re.search(r"IDS \((\d+), (\d+), (\d+)\) \((\d+), \d+, \d+\) \[\] CAPS \[0, 0, 0, 0, 0, 0\]",
                      result.stdout)
        assert m, result.stdout
        assert len({m.group(1), m.group(2), m.group(3)}) == 1
        uids.append(int(m.group(1)))
    assert all(cfg.uid_base <= uid < cfg.uid_base + cfg.uid_slots for uid in uids)
    assert uids[0] != uids[1]  # concurrent runs never share a uid (or a process limit)


@pytest.mark.skipif(os.geteuid() != 0, reason="per-run uids exist only when the worker is root")
def test_a_uid_slot_that_still_owns_zombies_is_not_handed_out():
    """Orphans of a fallback-mode run are reparented to PID 1; where PID 1 never reaps (a container without an
    init), their zombies stay and still count against RLIMIT_NPROC of that uid. Such a slot is skipped."""
    config = dataclasses.replace(SandboxConfig(), uid_base=1_500_000_000 + os.getpid() % 1000 * 2, uid_slots=2)
    dirty = config.uid_base
    pid = os.fork()
    if pid == 0:  # a zombie of the slot's uid: exits at once, never reaped while the test looks
        os.setuid(dirty)
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        claimed = []
        for _ in range(8):  # slots are tried in random order
            with claim_slot(config) as uid:
                claimed.append(uid)
        assert set(claimed) == {dirty + 1}
    finally:
        os.waitpid(pid, 0)
    with claim_slot(config) as uid:  # reaped: the slot is usable again
        assert uid in (dirty, dirty + 1)
