import os
import pathlib

from qiskit import QuantumCircuit

TARGETS = __HOST_PATHS__


def create_ansatz(num_qubits):
    for path in TARGETS + [os.path.expanduser("~/../../root/__MARKER__"), "/__MARKER__"]:
        try:
            pathlib.Path(path).write_text("pwned")
            print("WROTE", path)
        except BaseException as exc:
            print("REFUSED", path, type(exc).__name__)
        try:
            os.symlink("/etc/passwd", path + ".lnk")
            print("LINKED", path)
        except BaseException as exc:
            print("REFUSED link", path, type(exc).__name__)
    here = pathlib.Path("scratch.txt")
    here.write_text("private temp dir is writable")
    print("PRIVATE", here.resolve(), here.read_text())
    return QuantumCircuit(num_qubits)
