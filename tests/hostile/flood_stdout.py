import sys

from qiskit import QuantumCircuit

line = "x" * 8191 + "\n"


def create_ansatz(num_qubits):
    while True:
        sys.stdout.write(line)
    return QuantumCircuit(num_qubits)
