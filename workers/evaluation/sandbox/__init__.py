"""The sandbox wing: runs untrusted candidate code and brings back only serialised circuits.

``core`` (run_candidate, isolation status), ``outcome`` (what came back, as a ``SandboxResult``), ``runner`` (the
standard-library-only program that runs inside the sandbox), ``process`` (starting and watching the process tree),
``procfs`` (finding and killing it through /proc), ``isolation`` (bubblewrap arguments, uid slots, work folders),
``seccomp`` (the syscall filter), ``qpy_guard`` (the only way back into the trusted process), ``config`` (its
settings). See docs/sandbox.md.
"""

from .config import SandboxConfig
from .core import IsolationStatus, isolation_status, run_candidate
from .outcome import STATUS_OK
from .qpy_guard import DEFAULT_MAX_CIRCUIT_BYTES, SAFE_QPY_VERSIONS, load_circuit

__all__ = ["DEFAULT_MAX_CIRCUIT_BYTES", "SAFE_QPY_VERSIONS", "STATUS_OK", "IsolationStatus", "SandboxConfig",
           "isolation_status", "load_circuit", "run_candidate"]
