"""Program text for the procedural generator: a genome in, a Qiskit module defining ``create_ansatz`` out.

The text is assembled from the fixed templates below and validated numbers and names from :class:`Genome` only;
nothing from a parent program or a model is ever copied into it. Every gate it writes is one of the goal's
allowed gates: two-qubit rotations fall back to basis changes around ``rzz`` (or ``cx``-``rz``-``cx``) when
``rxx``/``ryy``/``rzz`` are not allowed. The module keeps one blank line between top-level blocks, because the
seed's stop sequence "\\n\\n\\n" would cut a model's answer at PEP 8's two (these programs also feed SFT data).
"""

from __future__ import annotations

import dataclasses
import json
import re

KINDS = ("hva", "number", "hea")
INITS = ("zero", "plus", "neel", "singlet", "hf")
AXES = ("rx", "ry", "rz")
ENTANGLERS = ("cz", "cx", "rzz", "rxx", "ryy", "none")
TOPOLOGIES = ("brick-ring", "brick", "ring", "linear", "all", "explicit")
SHARING = ("layer", "group", "none")
TERMS = ("zz", "xx", "yy", "x", "y", "z")
BLOCKS = ("xy", "givens")
GENOME_PREFIX = "# genome: "


class GenomeError(ValueError):
    """A genome field out of range (e.g. one parsed from a parent program's genome line)."""


@dataclasses.dataclass(frozen=True)
class Genome:
    """The structure of one procedural ansatz."""

    kind: str = "hea"
    """hva (Hamiltonian-variational), number (particle-number-conserving blocks) or hea (hardware-efficient)."""
    init: str = "zero"
    layers: int = 2
    rotations: tuple[str, ...] = ("ry",)
    """hea: rotation axes applied to every qubit in each layer."""
    entangler: str = "cz"
    """hea: two-qubit gate on the topology's pairs."""
    topology: str = "brick-ring"
    sharing: str = "none"
    """layer: one parameter per layer and term; group: per bond group too; none: one per gate."""
    final_rotations: bool = True
    terms: tuple[str, ...] = ()
    """hva: Hamiltonian terms applied in each layer (two-body zz/xx/yy, then fields x/y/z)."""
    block: str = "xy"
    """number: XX+YY mixer (xy) or a real Givens rotation (givens)."""
    zz: bool = False
    """number: also a ZZ rotation on each bond."""
    fields: bool = True
    """number: an RZ layer after the blocks."""

    def __post_init__(self) -> None:
        checks = [
            (self.kind in KINDS, f"kind must be one of {KINDS}"),
            (self.init in INITS, f"init must be one of {INITS}"),
            (isinstance(self.layers, int) and 1 <= self.layers <= 12, "layers must be an integer in 1..12"),
            (0 < len(self.rotations) <= 3 and all(a in AXES for a in self.rotations),
             f"rotations must be 1 to 3 of {AXES}"),
            (self.entangler in ENTANGLERS, f"entangler must be one of {ENTANGLERS}"),
            (self.topology in TOPOLOGIES, f"topology must be one of {TOPOLOGIES}"),
            (self.sharing in SHARING, f"sharing must be one of {SHARING}"),
            (all(t in TERMS for t in self.terms) and len(set(self.terms)) == len(self.terms),
             f"terms must be distinct names from {TERMS}"),
            (self.block in BLOCKS, f"block must be one of {BLOCKS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise GenomeError(f"invalid genome: {message}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(", ", ": "))

    @classmethod
    def from_dict(cls, data: dict) -> Genome:
        if not isinstance(data, dict):
            raise GenomeError("a genome must be a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise GenomeError(f"unknown genome field(s) {sorted(unknown)}")
        values = dict(data)
        for key in ("rotations", "terms"):
            if key in values:
                if not isinstance(values[key], (list, tuple)):
                    raise GenomeError(f"{key} must be a list")
                values[key] = tuple(values[key])
        for key in ("final_rotations", "zz", "fields"):
            if key in values and not isinstance(values[key], bool):
                raise GenomeError(f"{key} must be true or false")
        if "layers" in values and (isinstance(values["layers"], bool) or not isinstance(values["layers"], int)):
            raise GenomeError("layers must be an integer")
        return cls(**values)


# ---- gate helpers ------------------------------------------------------------------------------------------------
def _helper(name: str, doc: str, body: list[str]) -> str:
    return "\n".join([f"def {name}(qc, a, b, theta):", f'    """{doc}"""'] + [f"    {line}" for line in body])


def _between(first: str, zz: str, then: str) -> list[str]:
    """A ZZ rotation (helper ``zz``) between a basis change ``first`` and its undoing ``then``, each applied to both
    qubits (``{q}`` stands for the qubit)."""
    return [first.format(q="a"), first.format(q="b"), f"{zz}(qc, a, b, theta)", then.format(q="a"), then.format(q="b")]


class Writer:
    """Emits the helpers a program needs, each written with the goal's allowed gates only."""

    def __init__(self, allowed_gates) -> None:
        self.allowed = set(allowed_gates)
        self.helpers: dict[str, str] = {}

    def has(self, *gates: str) -> bool:
        return all(g in self.allowed for g in gates)

    def can(self, coupling: str) -> bool:
        """Whether the two-qubit rotation exp(-i theta/2 P P) (zz/xx/yy) or a block (xy/givens) can be written."""
        if coupling == "zz":
            return self.has("rzz") or self.has("cx", "rz")
        if coupling == "xx":
            return self.has("rxx") or (self.can("zz") and (self.has("h") or self.has("ry")))
        if coupling == "yy":
            return self.has("ryy") or (self.can("zz") and self.has("rx"))
        if coupling == "xy":
            return self.can("xx") and self.can("yy")
        if coupling == "givens":
            return self.can("xy") and self.has("rz")
        raise ValueError(coupling)

    def use(self, coupling: str) -> str:
        """The helper's name, emitting its definition (and those it calls) once."""
        name = f"_{coupling}"
        if name in self.helpers:
            return name
        if coupling == "zz":
            body = ["qc.rzz(theta, a, b)"] if self.has("rzz") else ["qc.cx(a, b)", "qc.rz(theta, b)", "qc.cx(a, b)"]
            doc = "exp(-i theta/2 Z_a Z_b)."
        elif coupling == "xx":
            doc = "exp(-i theta/2 X_a X_b)."
            if self.has("rxx"):
                body = ["qc.rxx(theta, a, b)"]
            else:
                zz = self.use("zz")
                if self.has("h"):
                    body = _between("qc.h({q})", zz, "qc.h({q})")
                else:
                    body = _between("qc.ry(-pi / 2, {q})", zz, "qc.ry(pi / 2, {q})")
        elif coupling == "yy":
            doc = "exp(-i theta/2 Y_a Y_b)."
            if self.has("ryy"):
                body = ["qc.ryy(theta, a, b)"]
            else:
                body = _between("qc.rx(pi / 2, {q})", self.use("zz"), "qc.rx(-pi / 2, {q})")
        elif coupling == "xy":
            doc = "exp(-i theta/2 (XX + YY)): hops an excitation between a and b, conserving their number."
            body = [f"{self.use('xx')}(qc, a, b, theta)", f"{self.use('yy')}(qc, a, b, theta)"]
        elif coupling == "givens":
            doc = "Real Givens rotation by the angle theta in the {|01>, |10>} subspace (number-conserving)."
            body = ["qc.rz(pi / 2, b)", f"{self.use('xy')}(qc, a, b, theta)", "qc.rz(-pi / 2, b)"]
        else:
            raise ValueError(coupling)
        self.helpers[name] = _helper(name, doc, body)
        return name

    def can_init(self, init: str) -> bool:
        return {
            "zero": True,
            "plus": self.has("h") or self.has("ry"),
            "neel": self.has("x") or self.has("rx") or self.has("ry"),
            "hf": self.has("x") or self.has("rx") or self.has("ry"),
            "singlet": self.has("x", "h", "cx", "rz"),
        }[init]

    def flip(self, q: str) -> str:
        """A bit flip on qubit expression ``q`` (x, else a fixed pi rotation)."""
        if self.has("x"):
            return f"qc.x({q})"
        return f"qc.rx(pi, {q})" if self.has("rx") else f"qc.ry(pi, {q})"


# ---- program assembly --------------------------------------------------------------------------------------------
GROUP_LINES = {
    "brick-ring": ["even = [(q, q + 1) for q in range(0, num_qubits - 1, 2)]",
                   "odd = [(q, q + 1) for q in range(1, num_qubits - 1, 2)]",
                   "wrap = [(num_qubits - 1, 0)] if num_qubits > 2 else []",
                   "groups = [even, odd, wrap]"],
    "brick": ["even = [(q, q + 1) for q in range(0, num_qubits - 1, 2)]",
              "odd = [(q, q + 1) for q in range(1, num_qubits - 1, 2)]",
              "groups = [even, odd]"],
    "ring": ["chain = [(q, q + 1) for q in range(num_qubits - 1)]",
             "groups = [chain + ([(num_qubits - 1, 0)] if num_qubits > 2 else [])]"],
    "linear": ["groups = [[(q, q + 1) for q in range(num_qubits - 1)]]"],
    "all": ["groups = [[(a, b) for a in range(num_qubits) for b in range(a + 1, num_qubits)]]"],
    "explicit": ["groups = [[(a, b) for a, b in BONDS if a < num_qubits and b < num_qubits]]"],
}
TOPOLOGY_WORDS = {
    "brick-ring": "even bonds, odd bonds, then the wrap-around bond", "brick": "even bonds, then odd bonds",
    "ring": "a ring", "linear": "a linear chain", "all": "all pairs", "explicit": "the Hamiltonian's bonds",
}
INIT_WORDS = {"zero": "|0...0>", "plus": "|+...+> (H on every qubit)", "neel": "Neel state (X on odd qubits)",
              "singlet": "singlet pairs on even bonds", "hf": "Hartree-Fock occupation (X on occupied orbitals)"}


def _param(share_key: str, sharing: str, shared_at: str) -> str:
    return share_key if sharing == shared_at else "new()"


def body_lines(genome: Genome, writer: Writer) -> tuple[list[str], list[str]]:
    """(lines of create_ansatz's body after the parameter factory, architecture bullet points)."""
    g = genome
    lines = list(GROUP_LINES[g.topology]) + _init_lines(g, writer)
    arch = [f"initial state: {INIT_WORDS[g.init]}"]
    lines.append(f"for layer in range({g.layers}):")
    layer = {"hea": _hea_layers, "hva": _hva_layers}.get(g.kind, _number_layers)  # else: number-conserving
    layer(g, writer, lines, arch)
    arch.append({"layer": "parameters shared within each layer", "group": "parameters shared within each bond group",
                 "none": "one parameter per rotation"}[g.sharing])
    return lines, arch


def _init_lines(g: Genome, writer: Writer) -> list[str]:
    """The initial state's lines."""
    lines: list[str] = []
    if g.init == "plus":
        lines += ["for q in range(num_qubits):", "    qc.h(q)" if writer.has("h") else "    qc.ry(pi / 2, q)"]
    elif g.init == "neel":
        lines += ["for q in range(1, num_qubits, 2):", f"    {writer.flip('q')}"]
    elif g.init == "hf":
        lines += ["for q in OCCUPIED:", "    if q < num_qubits:", f"        {writer.flip('q')}"]
    elif g.init == "singlet":
        lines += ["for q in range(0, num_qubits - 1, 2):", "    qc.x(q + 1)", "    qc.h(q)", "    qc.cx(q, q + 1)",
                  "    qc.rz(pi, q)"]
    return lines


def _hea_layers(g: Genome, writer: Writer, lines: list[str], arch: list[str]) -> None:
    """Hardware-efficient layers: rotations on every qubit, then an entangler on the bond groups."""
    per_layer = "layer" if g.sharing == "layer" else None
    for axis in g.rotations:
        if per_layer:
            lines.append("    t = new()")
        lines += ["    for q in range(num_qubits):", f"        qc.{axis}({'t' if per_layer else 'new()'}, q)"]
    if g.entangler == "none":
        pass
    elif g.entangler in ("cz", "cx"):
        lines += ["    for group in groups:", "        for a, b in group:", f"            qc.{g.entangler}(a, b)"]
    else:
        helper = writer.use(g.entangler[1:])
        if per_layer:
            lines.append("    t = new()")
        lines += ["    for group in groups:", "        for a, b in group:",
                  f"            {helper}(qc, a, b, {'t' if per_layer else 'new()'})"]
    ent = (f"then {g.entangler.upper()} on {TOPOLOGY_WORDS[g.topology]}" if g.entangler != "none"
           else "no entangling gates")
    arch.append(f"{g.layers} layer(s) of {'/'.join(a.upper() for a in g.rotations)} rotations on every qubit, "
                + ent)
    if g.final_rotations:
        for axis in g.rotations:
            lines += ["for q in range(num_qubits):", f"    qc.{axis}(new(), q)"]
        arch.append("a final rotation layer")


def _hva_layers(g: Genome, writer: Writer, lines: list[str], arch: list[str]) -> None:
    """Hamiltonian-variational layers: the goal's two-body couplings on the bond groups, then field rotations."""
    two_body = [t for t in g.terms if len(t) == 2]
    fields = [t for t in g.terms if len(t) == 1]
    if g.sharing == "layer":
        lines += [f"    {t} = new()" for t in two_body]
    if two_body:
        lines.append("    for group in groups:")
        if g.sharing == "group":
            lines += [f"        {t} = new()" for t in two_body]
        lines.append("        for a, b in group:")
        for t in two_body:
            lines.append(f"            {writer.use(t)}(qc, a, b, {t if g.sharing != 'none' else 'new()'})")
    for f in fields:
        shared = g.sharing != "none"
        if shared:
            lines.append("    t = new()")
        lines += ["    for q in range(num_qubits):", f"        qc.r{f}({'t' if shared else 'new()'}, q)"]
    words = ", ".join(t.upper() for t in two_body) or "no"
    arch.append(f"{g.layers} Hamiltonian-variational layer(s): {words} couplings on "
                f"{TOPOLOGY_WORDS[g.topology]}" + (f"; {', '.join(f.upper() for f in fields)} field rotations"
                                                   if fields else ""))


def _number_layers(g: Genome, writer: Writer, lines: list[str], arch: list[str]) -> None:
    """Number-conserving layers: Givens or XX+YY blocks (and ZZ) on the bond groups, RZ fields."""
    block = writer.use(g.block)
    zz = writer.use("zz") if g.zz else None
    if g.sharing == "layer":
        lines.append("    t = new()")
        if zz:
            lines.append("    u = new()")
    lines.append("    for group in groups:")
    if g.sharing == "group":
        lines.append("        t = new()")
        if zz:
            lines.append("        u = new()")
    lines.append("        for a, b in group:")
    lines.append(f"            {block}(qc, a, b, {'t' if g.sharing != 'none' else 'new()'})")
    if zz:
        lines.append(f"            {zz}(qc, a, b, {'u' if g.sharing != 'none' else 'new()'})")
    if g.fields:
        lines += ["    for q in range(num_qubits):", "        qc.rz(new(), q)"]
    arch.append(f"{g.layers} layer(s) of number-conserving {'Givens' if g.block == 'givens' else 'XX+YY'} "
                f"blocks{' with ZZ' if zz else ''} on {TOPOLOGY_WORDS[g.topology]}"
                + ("; RZ on every qubit" if g.fields else ""))


def render(genome: Genome, writer: Writer, *, goal_name: str, constants: dict[str, str] | None = None,
           num_parameters: int | str = "{num_parameters}", depth: int | str = "{depth}") -> str:
    """The whole module. ``constants`` are module-level lines such as ``OCCUPIED = [0, 1]``."""
    lines, arch = body_lines(genome, writer)
    kind_words = {"hva": "Hamiltonian-variational", "number": "Number-conserving", "hea": "Hardware-efficient"}
    doc = [f'"""{kind_words[genome.kind]} ansatz for {goal_name} (procedural generator).', "", "Architecture:"]
    doc += [f"- {a}" for a in arch] + ["", f"Parameters: {num_parameters}", f"Depth: {depth}", '"""']
    func = ["def create_ansatz(num_qubits: int) -> QuantumCircuit:"] + [f"    {d}" if d else "" for d in doc]
    func += ["    qc = QuantumCircuit(num_qubits)", "    params = []", "",
             "    def new():", '        p = Parameter(f"theta_{len(params)}")', "        params.append(p)",
             "        return p", ""]
    func += [f"    {line}" for line in lines] + ["    return qc"]
    header = ["from qiskit import QuantumCircuit", "from qiskit.circuit import Parameter"]
    blocks = ["\n".join(header), GENOME_PREFIX + genome.to_json()]
    if constants:
        blocks.append("\n".join(f"{k} = {v}" for k, v in constants.items()))
    blocks += list(writer.helpers.values()) + ["\n".join(func)]
    text = "\n\n".join(blocks) + "\n"
    if re.search(r"\bpi\b", text):
        text = "from math import pi\n" + text
    return text
