# Leave things behind that are awkward to delete: unreadable directories and a symlink to /etc.
import os

from qiskit import QuantumCircuit

os.makedirs("locked/deeper")
with open("locked/deeper/litter.txt", "w") as fh:
    fh.write("x")
os.symlink("/etc", "etc-link")
os.chmod("locked/deeper", 0)
os.chmod("locked", 0)


def create_ansatz(num_qubits):
    return QuantumCircuit(num_qubits)
