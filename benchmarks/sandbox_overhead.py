"""Per-candidate cost of the sandbox (a script, not a test).

Measures, side by side on this machine:
  * plain     - ``python -I -S -c "import qiskit"`` with no sandbox at all (the floor: one interpreter + qiskit);
  * bwrap     - run_candidate() of a small layered ansatz at 3 sizes under bubblewrap;
  * rlimits   - the same in the fallback;
  * load      - load_circuit() of one returned circuit (header checks + forked trial load + load).
Prints median and 90th percentile seconds, and the sandbox's overhead over the plain interpreter start.

    python benchmarks/sandbox_overhead.py [--runs 10]
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import argparse
import statistics
import subprocess
import time

from tests.ansatz_library import LAYERED
from workers.evaluation.sandbox import SandboxConfig, isolation_status, load_circuit, run_candidate
from workers.evaluation.sandbox.isolation import find_interpreter, sandbox_env

CANDIDATE = LAYERED  # a small layered ansatz (RY, CX chain, RZ), as the sandbox tests run it


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def describe(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{name:<10} median {statistics.median(samples):7.3f} s   p90 {p90:7.3f} s   (n={len(samples)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    interp = find_interpreter()
    status = isolation_status(SandboxConfig())
    print(status.summary())
    site = [p for p in interp.sys_path if "site-packages" in p or "dist-packages" in p]
    plain_cmd = [interp.executable, "-I", "-S", "-B", "-u", "-c",
                 f"import sys; sys.path += {site!r}; import qiskit, qiskit.qpy"]
    env = sandbox_env("/tmp")  # same single-threaded math libraries as inside the sandbox
    circuits = []

    def sandboxed(mode: str):
        def one():
            result = run_candidate(CANDIDATE, [8, 4, 6], config=SandboxConfig(isolation=mode))
            assert result.status == "ok", result.error
            circuits.append(result.circuits_qpy[8])
        return one

    steps = {"plain": lambda: subprocess.run(plain_cmd, check=True, env=env),
             "bwrap": sandboxed("bwrap"), "rlimits": sandboxed("rlimits")}
    results: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.runs):  # interleaved, so that load changes on a shared machine hit every variant alike
        for name, step in steps.items():
            results[name] += timed(step, 1)
    results["load"] = timed(lambda: load_circuit(circuits[-1]), args.runs)
    for name, samples in results.items():
        print(describe(name, samples))
    base = statistics.median(results["plain"])
    for mode in ("bwrap", "rlimits"):
        print(f"{mode} overhead over a plain interpreter + qiskit import: "
              f"{statistics.median(results[mode]) - base:+.3f} s per candidate (3 sizes)")


if __name__ == "__main__":
    main()
