"""The procedural generator: Qiskit ansatz programs without a language model.

It samples a :class:`Genome` (hardware-efficient layers with varied topologies, Hamiltonian-variational layers built
from the goal's own Pauli terms, particle-number-conserving XY/Givens blocks, parameter sharing, symmetric initial
states), renders it as program text, and checks the text against the goal's limits at the goal's size and at the
smaller sizes the barren-plateau check uses. Temperature is mutation strength: at low temperature it keeps the
choice that suits the goal best (or the parent's structure), at high temperature it explores. Parents (the memory
context's best programs) are read for their ``# genome:`` line, or for the gates they call; their text is never
executed or copied.

It is the embedded default when no model is configured, the baseline every model is compared against, and a
source of verified programs for SFT data.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import random
import re
import time
from collections.abc import Sequence

import numpy as np

from workers.evaluation.goals import Goal

from .base import DEFAULT_TEMPERATURES, Candidate, GenerationBatch, PromptRequest, candidate_seed
from .errors import GenerationError
from .procedural_program import ENTANGLERS, GENOME_PREFIX, Genome, GenomeError, Writer, render
from .prompts import SYSTEM_PROMPT, render_prompt

_ROTATION_OPTIONS = [("ry",), ("ry", "rz"), ("rx", "rz"), ("rz", "ry", "rz"), ("rx",), ("rx", "ry"),
                     ("rz", "rx", "rz")]
_FIELD_OPTIONS = ("z", "y", "x")
MAX_HF_QUBITS = 16


@dataclasses.dataclass(frozen=True)
class GoalShape:
    """What the generator reads off a goal."""

    two_body: tuple[str, ...]
    """Same-letter two-qubit Pauli terms present (zz, xx, yy)."""
    fields: tuple[str, ...]
    """Single-qubit Pauli terms present (x, y, z)."""
    number_conserving: bool
    """The Hamiltonian commutes with the total Z magnetisation (particle number under Jordan-Wigner)."""
    natural_topology: str
    bonds: tuple[tuple[int, int], ...]
    occupied: tuple[int, ...]
    """Qubits set in the lowest-energy computational basis state (a Hartree-Fock-like start), when computed."""

    @classmethod
    def of(cls, goal: Goal) -> GoalShape:
        two, fields, bonds = set(), set(), set()
        for paulis, qubits, _ in goal.hamiltonian.to_sparse_list():
            if len(paulis) == 1:
                fields.add(paulis.lower())
            elif len(paulis) == 2 and paulis[0] == paulis[1]:
                two.add(paulis.lower())
                bonds.add(tuple(sorted(int(q) for q in qubits)))
        n = goal.num_qubits
        total_z = sum((_z_on(q, n) for q in range(n)), start=_z_on(0, n) * 0)
        comm = (goal.hamiltonian @ total_z - total_z @ goal.hamiltonian).simplify(atol=1e-10)
        conserving = bool(np.allclose(comm.coeffs, 0.0, atol=1e-9))
        if goal.is_lattice:
            natural = "brick-ring" if goal.params.get("periodic", True) else "brick"
        else:
            natural = "explicit"
        return cls(tuple(t for t in ("zz", "xx", "yy") if t in two), tuple(f for f in ("x", "y", "z") if f in fields),
                   conserving, natural, tuple(sorted(bonds)), _lowest_basis_state(goal))


def _z_on(q: int, n: int):
    from qiskit.quantum_info import SparsePauliOp

    return SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], num_qubits=n)


def _lowest_basis_state(goal: Goal) -> tuple[int, ...]:
    """The computational basis state of lowest diagonal energy (only Z-type terms contribute), as set qubits; in the
    goal's particle sector when it declares one (a stretched molecule's lowest diagonal state can lie in another)."""
    n = goal.num_qubits
    if n > MAX_HF_QUBITS or goal.is_lattice:
        return ()
    states = np.arange(2**n, dtype=np.int64)
    diag = np.zeros(2**n)
    for paulis, qubits, coeff in goal.hamiltonian.to_sparse_list():
        if set(paulis) <= {"Z"}:
            parity = np.zeros(2**n, dtype=np.int64)
            for q in qubits:
                parity ^= (states >> int(q)) & 1
            diag += float(np.real(coeff)) * (1 - 2 * parity)
    if goal.num_particles is not None:
        half = n // 2
        up = np.bitwise_count(states & ((1 << half) - 1)).astype(np.int64)
        down = np.bitwise_count(states >> half).astype(np.int64)
        diag[(up != goal.num_particles[0]) | (down != goal.num_particles[1])] = np.inf
    best = int(np.argmin(diag))
    return tuple(q for q in range(n) if (best >> q) & 1)


def build_circuits(code: str, sizes: Sequence[int]) -> dict:
    """Run OUR OWN program text in-process to build its circuits. Never call this with a model's or parent's text:
    those run only in the sandbox. Procedural text comes from fixed templates and validated genome fields."""
    namespace: dict = {"__name__": "procedural_candidate"}
    exec(compile(code, "<procedural>", "exec"), namespace)  # noqa: S102 - trusted, template-generated text
    return {n: namespace["create_ansatz"](n) for n in sizes}


def check_sizes(goal: Goal) -> list[int]:
    """The goal's size first, then the other sizes the barren-plateau scaling fit builds (lattice goals): n-2 and
    n-4, and the sizes ``barren.scaling_sizes`` picks (which grow upward for small goals)."""
    from workers.evaluation.barren import scaling_sizes

    n = goal.num_qubits
    if not goal.is_lattice:
        return [n]
    return list(dict.fromkeys([n] + [m for m in (n - 2, n - 4) if m >= goal.min_qubits] + scaling_sizes(goal)))


def violations(circuits: dict, goal: Goal) -> list[str]:
    """What a verifier would reject: width, parameters, gates outside allowed_gates, depth over max_depth."""
    allowed = set(goal.allowed_gates)
    problems = []
    for n, qc in circuits.items():
        if qc.num_qubits != n:
            problems.append(f"create_ansatz({n}) built {qc.num_qubits} qubits")
        if qc.num_parameters == 0:
            problems.append(f"create_ansatz({n}) has no trainable parameters")
        bad = sorted(set(qc.count_ops()) - allowed)
        if bad:
            problems.append(f"create_ansatz({n}) uses gates outside allowed_gates: {bad}")
        if n <= goal.num_qubits and qc.depth() > goal.max_depth:  # larger sizes only feed the scaling fit
            problems.append(f"create_ansatz({n}) has depth {qc.depth()} > max_depth {goal.max_depth}")
    return problems


class Options:
    """The options of each gene for one goal, best first, already filtered by the goal's allowed gates."""

    def __init__(self, goal: Goal, writer: Writer) -> None:
        self.goal, self.writer, self.shape = goal, writer, GoalShape.of(goal)
        s, w, n = self.shape, writer, goal.num_qubits
        self.terms = self._term_options()
        kinds = []
        if self.terms and (goal.is_lattice or len(s.bonds) <= 4 * n):
            kinds.append("hva")
        if s.number_conserving and (w.can("xy") or w.can("givens")) and self._inits("number"):
            kinds.insert(0 if goal.is_molecule else len(kinds), "number")
        kinds.append("hea")
        self.kinds = kinds
        topo = [s.natural_topology] if s.natural_topology != "explicit" else []
        topo += [t for t in ("brick-ring", "ring", "brick", "linear") if t not in topo]
        if n <= 8:
            topo.append("all")
        self.topologies = topo
        self.rotations = [r for r in _ROTATION_OPTIONS if w.has(*r)]
        self.entanglers = [e for e in ENTANGLERS if (e in ("cz", "cx") and w.has(e))
                           or (e.startswith("r") and w.can(e[1:]))] + ["none"]
        self.entanglers = list(dict.fromkeys(self.entanglers))
        self.blocks = [b for b in (("givens", "xy") if goal.is_molecule else ("xy", "givens")) if w.can(b)]

    def _term_options(self) -> list[tuple[str, ...]]:
        s, w = self.shape, self.writer
        base = tuple(t for t in s.two_body if w.can(t)) + tuple(f for f in s.fields if w.has(f"r{f}"))
        if not any(len(t) == 2 for t in base) or all(t in ("zz", "z") for t in base):
            return []  # no coupling, or only Z-type terms: such layers never leave the computational basis
        options = [base]
        for extra in _FIELD_OPTIONS:
            if extra not in base and w.has(f"r{extra}"):
                options.append(base + (extra,))
        two = [t for t in base if len(t) == 2]
        if len(two) > 1:
            options.append(tuple(reversed(two)) + tuple(t for t in base if len(t) == 1))
        return options

    def _inits(self, kind: str) -> list[str]:
        g, s = self.goal, self.shape
        if kind == "number":
            order = ["hf"] if s.occupied else []
            order += ["neel", "singlet"] if g.is_lattice or not s.occupied else ["neel"]
        elif kind == "hva":
            if "x" in s.fields and "zz" in s.two_body:
                order = ["plus", "zero"]
            elif g.family == "heisenberg":
                order = ["singlet", "neel", "zero"]
            elif s.number_conserving:
                order = ["neel", "singlet", "zero"]
            else:
                order = ["zero", "plus"] + (["hf"] if s.occupied else [])
        else:
            order = (["hf"] if s.occupied else []) + ["zero", "plus", "neel"]
        if not s.occupied:
            order = [i for i in order if i != "hf"]
        if kind != "hea" and self._pure_hopping():
            # XX/YY hopping alone flips the sign of the energy under the sublattice parity prod Z_odd, and the
            # circuits are real: from a computational basis state the energy is then 0 for every parameter value
            # (the cascade refuses such a circuit). A dimer (singlet) start breaks that symmetry.
            order = [i for i in order if i not in ("neel", "zero", "hf")] or ["singlet"]
        return [i for i in order if self.writer.can_init(i)]

    def _pure_hopping(self) -> bool:
        """The goal's operator has only XX/YY couplings and no fields (the XY model)."""
        s = self.shape
        return not s.fields and bool(s.two_body) and set(s.two_body) <= {"xx", "yy"}

    def gene_options(self, kind: str) -> dict[str, list]:
        """Option lists for every gene that matters for ``kind``."""
        opts: dict[str, list] = {"init": self._inits(kind), "topology": list(self.topologies)}
        if kind == "hea":
            opts.update(rotations=self.rotations, entangler=self.entanglers, sharing=["none", "layer"],
                        final_rotations=[True, False])
        elif kind == "hva":
            topo = (["explicit"] + self.topologies) if self.shape.natural_topology == "explicit" else self.topologies
            opts.update(terms=self.terms, sharing=["layer", "group", "none"], topology=topo)
        else:
            has_zz = "zz" in self.shape.two_body and self.writer.can("zz")
            opts.update(block=self.blocks, zz=[True, False] if has_zz else [False, True] if self.writer.can("zz")
                        else [False], fields=[True, False] if self.writer.has("rz") else [False],
                        sharing=["group", "layer", "none"])
        return opts


def _pick(rng: random.Random, options: list, temperature: float, exclude=None):
    """An option, index i with weight exp(-i / (0.9 T)): T -> 0 keeps the first, higher T explores."""
    choices = [o for o in options if o != exclude] or list(options)
    if temperature <= 0 or len(choices) == 1:
        return choices[0]
    weights = [math.exp(-i / (0.9 * temperature)) for i in range(len(choices))]
    return rng.choices(choices, weights=weights)[0]


def _layers(rng: random.Random, base: int, temperature: float) -> int:
    return int(min(8, max(1, round(base + rng.gauss(0.0, 1.6 * temperature)))))


def sample_genome(options: Options, rng: random.Random, temperature: float) -> Genome:
    """A fresh genome: each gene drawn from its option list at ``temperature``."""
    kind = _pick(rng, options.kinds, temperature)
    values = {k: _pick(rng, v, temperature) for k, v in options.gene_options(kind).items() if v}
    return Genome(kind=kind, layers=_layers(rng, 2, temperature), **values)


def parent_genome(code: str) -> Genome | None:
    """The genome a parent program carries in its ``# genome:`` line, else one inferred from the gates it calls."""
    match = re.search(rf"^{re.escape(GENOME_PREFIX)}(\{{.*\}})\s*$", code, re.MULTILINE)
    if match:
        try:
            return Genome.from_dict(json.loads(match.group(1)))
        except (ValueError, TypeError, GenomeError):
            pass
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    calls = [node.func.attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    axes = tuple(dict.fromkeys(c for c in calls if c in ("rx", "ry", "rz")))[:3]
    entangler = next((c for c in calls if c in ENTANGLERS), "cz")
    if not axes:
        return None
    return Genome(kind="hea", rotations=axes, entangler=entangler, layers=2)


def mutate(genome: Genome, options: Options, rng: random.Random, temperature: float) -> Genome:
    """A child of ``genome``: genes outside this goal's options are repaired; each other gene changes with a
    probability growing with temperature (at least one changes)."""
    kind = genome.kind if genome.kind in options.kinds else _pick(rng, options.kinds, temperature)
    p = min(0.9, 0.15 + 0.6 * temperature)
    if rng.random() < p * 0.5:
        kind = _pick(rng, options.kinds, temperature, exclude=kind)
    values = {f.name: getattr(genome, f.name) for f in dataclasses.fields(genome)}
    values["kind"] = kind
    changed = kind != genome.kind
    genes = options.gene_options(kind)
    for name, opts in genes.items():
        if not opts:
            continue
        if values[name] not in opts:
            values[name] = _pick(rng, opts, temperature)
            changed = True
        elif rng.random() < p:
            values[name] = _pick(rng, opts, temperature, exclude=values[name])
            changed = changed or values[name] != getattr(genome, name)
    if rng.random() < p or not changed:
        values["layers"] = _layers(rng, genome.layers, max(temperature, 0.4))
        if values["layers"] == genome.layers and not changed:
            values["layers"] = genome.layers + 1 if genome.layers < 8 else genome.layers - 1
    return Genome(**values)


@dataclasses.dataclass(frozen=True)
class Program:
    """One procedural program and what it was checked to be at the goal's size."""

    code: str
    genome: Genome
    depth: int
    num_parameters: int
    parent: int | None = None
    """Index of the parent it was mutated from, if any."""


def _fallbacks(genome: Genome, options: Options) -> list[Genome]:
    """Simpler variants to try when a genome cannot fit max_depth even with one layer."""
    axis = options.rotations[0] if options.rotations else None
    out = [dataclasses.replace(genome, topology="brick", layers=1)]
    if axis:
        out.append(Genome(kind="hea", init="zero", layers=1, rotations=axis, entangler=options.entanglers[0],
                          topology="brick", final_rotations=False))
        out.append(Genome(kind="hea", init="zero", layers=1, rotations=(axis[0],), entangler="none",
                          topology="brick", final_rotations=False))
    return out


def realise(goal: Goal, genome: Genome, options: Options) -> Program:
    """Render ``genome`` for ``goal`` and shrink it until it passes the goal's limits at every checked size."""
    sizes = check_sizes(goal)
    constants = {}
    if options.shape.occupied:
        constants["OCCUPIED"] = repr(list(options.shape.occupied))
    candidates = [genome] + _fallbacks(genome, options)
    last_problems: list[str] = []
    for candidate in candidates:
        for layers in range(candidate.layers, 0, -1):
            g = dataclasses.replace(candidate, layers=layers)
            if g.topology == "explicit":
                constants["BONDS"] = repr([list(b) for b in options.shape.bonds])
            writer = Writer(goal.allowed_gates)
            draft = render(g, writer, goal_name=goal.name, constants=constants)
            circuits = build_circuits(draft, sizes)
            last_problems = violations(circuits, goal)
            if not last_problems:
                qc = circuits[goal.num_qubits]
                code = draft.replace("Parameters: {num_parameters}", f"Parameters: {qc.num_parameters}")
                code = code.replace("Depth: {depth}", f"Depth: {qc.depth()}")
                return Program(code, g, qc.depth(), qc.num_parameters)
    raise GenerationError(
        f"the procedural generator found no ansatz within goal '{goal.name}' limits (allowed_gates "
        f"{list(goal.allowed_gates)}, max_depth {goal.max_depth}): {'; '.join(last_problems)}. It needs at least "
        f"one of rx, ry, rz among the allowed gates"
    )


def propose(goal: Goal, temperature: float, seed: int, parents: Sequence[str] = ()) -> Program:
    """One program for ``goal``: a mutated parent when parents are given (best first), else a fresh sample."""
    writer = Writer(goal.allowed_gates)
    if not any(writer.has(a) for a in ("rx", "ry", "rz")):
        raise GenerationError(f"goal '{goal.name}' allows none of rx, ry, rz (allowed_gates "
                              f"{list(goal.allowed_gates)}); the procedural generator needs a rotation gate")
    options = Options(goal, writer)
    rng = random.Random(f"procedural:{seed}:{temperature:.6f}:{goal.spec_hash}")
    parsed = [(i, parent_genome(code)) for i, code in enumerate(parents)]
    parsed = [(i, g) for i, g in parsed if g is not None]
    if parsed:
        weights = [math.exp(-rank / (temperature + 0.1)) for rank in range(len(parsed))]
        index, genome = rng.choices(parsed, weights=weights)[0]
        return dataclasses.replace(realise(goal, mutate(genome, options, rng, temperature), options), parent=index)
    return realise(goal, sample_genome(options, rng, temperature), options)


def fenced(code: str) -> str:
    """The program as a model would answer it (the 'raw' completion)."""
    return f"```python\n{code}```"


class ProceduralGenerator:
    """The procedural backend of the :class:`~workers.generation.base.Generator` protocol."""

    name = "procedural"

    def __init__(self, config=None) -> None:
        self.temperatures = tuple(getattr(config, "temperatures", DEFAULT_TEMPERATURES))
        self.max_context_chars = getattr(config, "max_context_chars", 4000)
        self.max_terms = getattr(config, "max_hamiltonian_terms", 24)

    def generate(self, requests: Sequence[PromptRequest]) -> list[GenerationBatch]:
        batches = []
        for request in requests:
            start = time.perf_counter()
            prompt = render_prompt(request.goal, request.memory_context, max_context_chars=self.max_context_chars,
                                   max_terms=self.max_terms)
            candidates = []
            for index, temperature in enumerate(self.temperatures):
                seed = candidate_seed(request.seed, index)
                program = propose(request.goal, temperature, seed, request.parents)
                candidates.append(Candidate(temperature=temperature, raw=fenced(program.code), code=program.code,
                                            tokens=0, seed=seed, finish_reason="stop"))
            batches.append(GenerationBatch(
                goal_name=request.goal.name, system_prompt=SYSTEM_PROMPT, prompt=prompt,
                memory_context=request.memory_context, candidates=tuple(candidates), generator=self.name,
                settings={"temperatures": list(self.temperatures), "seed": request.seed,
                          "parents": len(request.parents)},
                seconds=time.perf_counter() - start,
            ))
        return batches
