# Count how many processes the sandbox lets us start; each child sleeps (and must be killed afterwards).
import ctypes
import os
import time

from qiskit import QuantumCircuit

ctypes.CDLL(None).prctl(15, b"__MARKER__", 0, 0, 0)


def create_ansatz(num_qubits):
    started = 0
    error = ""
    for _ in range(500):
        try:
            pid = os.fork()
        except OSError as exc:
            error = type(exc).__name__
            break
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        started += 1
    print(f"FORKS {started} {error}")
    return QuantumCircuit(num_qubits)
