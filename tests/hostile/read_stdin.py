import sys

from qiskit import QuantumCircuit


def create_ansatz(num_qubits):
    data = sys.stdin.read()
    print("STDIN", repr(data))
    answer = input("how many layers? ")
    return QuantumCircuit(num_qubits)
