# Fill the disk: 1 MiB files until 64 MiB are written or the writes keep failing.
import os

from qiskit import QuantumCircuit

block = b"d" * (1 << 20)


def create_ansatz(num_qubits):
    written, failures, index = 0, 0, 0
    while written < (64 << 20) and failures < 20:
        index += 1
        try:
            with open(f"fill-{index}.bin", "wb") as fh:
                fh.write(block)
            written += len(block)
        except OSError:
            failures += 1
    print("TOTAL", written, "FAILURES", failures, "FREE", os.statvfs(".").f_bavail * os.statvfs(".").f_frsize)
    return QuantumCircuit(num_qubits)
