# A directory chain 3000 levels deep (paths far beyond PATH_MAX) with files at the bottom: the disk watchdog must
# still see them, and the cleanup (which crashed with RecursionError and poisoned the uid slot) must remove it.
import os

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter


def create_ansatz(num_qubits):
    fd = os.open(".", os.O_RDONLY)
    for _ in range(3000):
        os.mkdir("d" * 100, dir_fd=fd)
        child = os.open("d" * 100, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    written = 0
    for index in range(12):
        try:
            out = os.open(f"f{index}", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
            written += os.write(out, b"x" * (1 << 20))
            os.close(out)
        except OSError:
            break
    os.fchmod(fd, 0)  # and make the bottom of the tree unreadable on the way out
    print("WROTE", written)
    qc = QuantumCircuit(num_qubits)
    qc.ry(Parameter("t"), 0)
    return qc
