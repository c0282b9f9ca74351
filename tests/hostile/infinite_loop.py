from qiskit import QuantumCircuit


def create_ansatz(num_qubits):
    while True:
        pass
    return QuantumCircuit(num_qubits)
