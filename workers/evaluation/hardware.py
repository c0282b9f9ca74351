"""The optional hardware stage: routed cost on a real device's coupling map, and an energy under its noise.

For a goal with ``hardware`` set (``goals/hardware_options.py``), each valid candidate is

1. transpiled to a fake IBM backend of ``qiskit_ibm_runtime.fake_provider`` (default ``fake_sherbrooke``: the
   127-qubit Eagle r3 IBM Sherbrooke, heavy-hex coupling map, basis ``ecr, rz, sx, x``; its calibration snapshot
   ships with the package and needs no network) with Qiskit's preset pass manager, ``seed_transpiler`` = the
   evaluation seed: the routed two-qubit gate count and depth are recorded;
2. when VQE ran, bound to the VQE's best (noiseless) parameters and measured with a fixed shot budget under the
   backend's noise model (``simulation/noisy.py``: seeded, a wall-clock budget, one standard error of shot noise).
   The noisy energy is not re-optimised: it says how the noiselessly trained circuit fares on the device.

Anything that cannot be measured (no VQE parameters, too many active qubits, the time budget) leaves the noisy
energy ``None`` with the reason in ``not_measured``; it is never paid as the best case.
"""

from __future__ import annotations

import functools
import time

from qiskit import QuantumCircuit, transpile

from .errors import EvaluationError
from .goals import Goal
from .goals.hardware_options import HardwareOptions
from .results import HardwareResult
from .simulation.noisy import OutOfTime, estimate_energy


def _backend_classes() -> dict[str, type]:
    from qiskit_ibm_runtime import fake_provider

    return {"fake_" + name[4:].lower(): cls for name, cls in vars(fake_provider).items()
            if isinstance(cls, type) and name.startswith("Fake") and name[4:5].isupper()
            and issubclass(cls, fake_provider.fake_backend.FakeBackendV2)}


@functools.lru_cache(maxsize=4)
def load_backend(name: str):
    """The fake backend called ``name`` (cached per process)."""
    try:
        classes = _backend_classes()
    except ImportError as exc:
        raise EvaluationError("the hardware stage needs qiskit-ibm-runtime (pip install 'quantum-mind[hardware]')"
                              ) from exc
    if name not in classes:
        raise EvaluationError(f"unknown fake backend '{name}'; available: {', '.join(sorted(classes))}")
    return classes[name]()


def preload_backend(name: str) -> None:
    """Load ``name`` into this process's cache if it can be (the stage itself reports why it cannot)."""
    try:
        load_backend(name)
    except EvaluationError:
        pass


def _local_target(target, physical: list[int]):
    """A Target on ``physical`` qubits only, renumbered 0..k-1 in that order, with their calibration."""
    from qiskit.transpiler import Target

    index = {p: i for i, p in enumerate(physical)}
    local = Target(num_qubits=len(physical), dt=target.dt,
                   qubit_properties=[target.qubit_properties[p] for p in physical])
    for name in target.operation_names:
        props = target[name]
        if not props or None in props:
            continue  # global instructions (control flow) carry no calibration
        kept = {tuple(index[q] for q in qargs): prop for qargs, prop in props.items()
                if all(q in index for q in qargs)}
        if kept:
            local.add_instruction(target.operation_from_name(name), kept, name=name)
    return local


def local_noise_model(name: str, physical: list[int]):
    """The device's noise model (gate errors, thermal relaxation during gates, readout errors) for ``physical``
    qubits only, renumbered 0..k-1 in that order: what ``NoiseModel.from_backend`` builds, without the 127-qubit
    model's cost on every run."""
    from qiskit_aer.noise import NoiseModel
    from qiskit_aer.noise.device import basic_device_gate_errors, basic_device_readout_errors

    backend = load_backend(name)
    target = _local_target(backend.target, physical)
    model = NoiseModel(basis_gates=backend.operation_names)
    for qubits, error in basic_device_readout_errors(target=target):
        model.add_readout_error(error, qubits, warnings=False)
    for gate, qubits, error in basic_device_gate_errors(target=target):
        model.add_quantum_error(error, gate, qubits, warnings=False)
    return model


def _compact(routed: QuantumCircuit) -> tuple[QuantumCircuit, list[int]]:
    """The routed circuit on only the physical qubits it touches (ascending), and those qubits."""
    used = sorted({routed.find_bit(q).index for inst in routed.data for q in inst.qubits})
    index = {p: i for i, p in enumerate(used)}
    compact = QuantumCircuit(len(used), global_phase=routed.global_phase)
    for inst in routed.data:
        compact.append(inst.operation, [index[routed.find_bit(q).index] for q in inst.qubits])
    return compact, used


def route(circuit: QuantumCircuit, options: HardwareOptions, *, seed: int) -> QuantumCircuit:
    """``circuit`` transpiled to the options' backend (seeded); raises EvaluationError when it cannot be."""
    backend = load_backend(options.backend)
    if circuit.num_qubits > backend.num_qubits:
        raise EvaluationError(f"the circuit has {circuit.num_qubits} qubits; {options.backend} has "
                              f"{backend.num_qubits}")
    try:
        return transpile(circuit, backend, optimization_level=options.optimization_level, seed_transpiler=seed)
    except Exception as exc:
        raise EvaluationError(f"transpiling to {options.backend} failed: {exc}") from exc


def score_hardware(circuit: QuantumCircuit, goal: Goal, parameters=None, *, seed: int = 0,
                   options: HardwareOptions | None = None) -> HardwareResult:
    """Routed cost of ``circuit`` and, given ``parameters`` (``circuit.parameters`` order), its noisy energy."""
    options = options or goal.hardware or HardwareOptions()
    start = time.perf_counter()
    routed = route(circuit, options, seed=seed)
    counts = dict(routed.count_ops())
    two_qubit = sum(1 for inst in routed.data if inst.operation.num_qubits == 2)
    layout = tuple(routed.layout.final_index_layout()) if routed.layout is not None else tuple(range(goal.num_qubits))
    compact, used = _compact(routed)
    base = {"backend": options.backend, "routed_two_qubit_gates": two_qubit, "routed_depth": routed.depth(),
            "routed_two_qubit_depth": routed.depth(lambda inst: inst.operation.num_qubits == 2),
            "routed_gate_counts": counts, "active_qubits": len(used), "layout": layout,
            "optimization_level": options.optimization_level, "seed": seed}
    reason = ""
    if parameters is None:
        reason = "no trained parameters (VQE did not run)"
    elif len(used) > options.max_active_qubits:
        reason = f"{len(used)} active physical qubits after routing; the noisy simulation stops at " \
                 f"{options.max_active_qubits}"
    if reason:
        return HardwareResult(**base, not_measured=reason, seconds=time.perf_counter() - start)
    if len(parameters) != circuit.num_parameters:
        raise EvaluationError(f"{len(parameters)} parameter values for a circuit with {circuit.num_parameters}")
    values = dict(zip(circuit.parameters, map(float, parameters)))
    state = compact.assign_parameters({p: values[p] for p in compact.parameters})
    physical = [used.index(p) for p in layout]
    try:
        est = estimate_energy(state, goal.hamiltonian, physical, noise_model=local_noise_model(options.backend, used),
                              shots=options.shots, seed=seed, max_seconds=options.max_seconds, start=start)
    except OutOfTime as exc:
        return HardwareResult(**base, not_measured=str(exc), seconds=time.perf_counter() - start)
    return HardwareResult(**base, noisy_energy=est.energy, noisy_stderr=est.stderr,
                          noisy_error=est.energy - goal.exact_energy, shots=est.shots, groups=est.groups,
                          method=est.method, seconds=time.perf_counter() - start)
