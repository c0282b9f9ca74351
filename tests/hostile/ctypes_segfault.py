import ctypes

from qiskit import QuantumCircuit


def create_ansatz(num_qubits):
    ctypes.string_at(0)
    return QuantumCircuit(num_qubits)
