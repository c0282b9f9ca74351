"""``qmind goals list`` and ``qmind goals show NAME``."""

from __future__ import annotations

import typer
from rich.table import Table

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal
from workers.evaluation.goals.files import load_goal_file
from workers.evaluation.goals.hamiltonians import FAMILIES, MAX_LATTICE_QUBITS, molecule_data, molecule_names

from . import app
from .common import console, field_table, print_json, usage_error

goals_app = typer.Typer(help="Built-in and user-defined goals (Hamiltonians and limits).", no_args_is_help=True)
app.add_typer(goals_app, name="goals")


def family_rows() -> list[dict]:
    """One row per lattice family and geometry: name pattern, qubit range, formula, default parameters."""
    rows = []
    for name, fam in FAMILIES.items():
        q = fam.qubits_per_site
        size = "L" if q > 1 else "N"
        shapes = [(f"{name}-{size}", "periodic chain", fam.min_qubits(True)),
                  (f"{name}-open-{size}", "open chain", fam.min_qubits(False))]
        if fam.geometries:
            shapes += [(f"{name}-RxC", "square lattice, torus", fam.min_qubits(True, 2)),
                       (f"{name}-open-RxC", "square lattice, open", fam.min_qubits(False, 2)),
                       (f"{name}-ladder-C", "two-leg ladder, periodic legs", fam.min_qubits(True, 2)),
                       (f"{name}-ladder-open-C", "two-leg ladder, open", fam.min_qubits(False, 2))]
        sector = ", half filling (sector stated per goal)" if q > 1 else ""
        for pattern, geometry, lo in shapes:
            rows.append({"name": pattern, "kind": "lattice", "qubits": f"{lo}..{MAX_LATTICE_QUBITS}",
                         "hamiltonian": f"{fam.formula} ({geometry}{sector})", "params": fam.defaults})
    return rows


def set_rows() -> list[dict]:
    """Goal sets: the '+' syntax and one row per committed dissociation curve."""
    from workers.evaluation.goals.goal_set import curve_names

    rows = [{"name": "GOAL+SIZE+...", "kind": "set", "qubits": "each member's",
             "hamiltonian": "one program on every member: worst and mean error, and the error at a larger lattice "
                            "(e.g. tfim-4+6+8, tfim-2x2+2x3, h2+lih)", "params": {}}]
    curves = sorted({m.rsplit("-", 1)[0] for m in molecule_names() if m.rsplit("-", 1)[-1].replace(".", "").isdigit()
                     and "." in m.rsplit("-", 1)[-1]})
    for mol in curves:
        points = curve_names(f"{mol}-curve", molecule_names())
        rows.append({"name": f"{mol}-curve", "kind": "set", "qubits": str(molecule_data(points[0])["num_qubits"]),
                     "hamiltonian": f"{len(points)} bond lengths, {points[0]} .. {points[-1]}", "params": {}})
    return rows


@goals_app.command("list")
def list_goals(
    file: str = typer.Option(None, "--file", "-f", help="Also list the goals of this YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the goal families, molecules and (with --file) a file's goals."""
    rows = family_rows()
    for mol in molecule_names():
        data = molecule_data(mol)
        rows.append({"name": mol, "kind": "molecule", "qubits": str(data["num_qubits"]),
                     "hamiltonian": f"{len(data['electronic_terms'])} Pauli terms, "
                                    f"{sum(data.get('num_particles') or [])} electrons", "params": {}})
    rows += set_rows()
    if file:
        try:
            for g in load_goal_file(file):
                rows.append({"name": g.name, "kind": g.kind, "qubits": str(g.num_qubits),
                             "hamiltonian": f"{len(g.hamiltonian)} Pauli terms", "params": dict(g.params)})
        except GoalError as exc:
            usage_error(str(exc), as_json=as_json)
    if as_json:
        print_json({"goals": rows})
        return
    table = Table(title="quantum-mind goals (N qubits, L sites, R rows x C columns, C rungs; e.g. tfim-8, "
                        "tfim-3x3, hubbard-open-2x2)")
    for col in ("name", "kind", "qubits", "hamiltonian"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["kind"], r["qubits"], r["hamiltonian"])
    console.print(table)


@goals_app.command("show")
def show_goal(
    name: str = typer.Argument(..., help="A goal name (tfim-8, h2, ...) or a goal YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one goal: Hamiltonian, exact ground energy, limits, provenance."""
    try:
        goal = get_goal(name)
        summary = goal.summary()
    except GoalError as exc:
        usage_error(str(exc), as_json=as_json)
    if as_json:
        print_json(summary)
        return
    table = field_table(f"goal {goal.name}")
    for key in ("description", "kind", "num_qubits", "num_particles", "exact_energy", "exact_energy_sector",
                "full_space_note", "reference_energy", "max_depth", "allowed_gates", "family_sizes", "num_terms",
                "hamiltonian"):
        value = summary.get(key)
        if key == "exact_energy":
            value = f"{value:.10f}"
        elif key in ("allowed_gates", "family_sizes"):
            value = ", ".join(str(v) for v in value)
        elif key == "num_particles" and value is not None:
            value = f"{sum(value)} ({value[0]} spin up, {value[1]} spin down)"
        elif value is None and key in ("full_space_note",):
            continue
        table.add_row(key, str(value))
    console.print(table)
