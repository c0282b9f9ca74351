"""``qmind goals list`` and ``qmind goals show NAME``."""

from __future__ import annotations

import typer
from rich.table import Table

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal
from workers.evaluation.goals.files import load_goal_file
from workers.evaluation.goals.hamiltonians import FAMILIES, MAX_LATTICE_QUBITS, molecule_names

from . import app
from .common import console, print_json, usage_error

goals_app = typer.Typer(help="Built-in and user-defined goals (Hamiltonians and limits).", no_args_is_help=True)
app.add_typer(goals_app, name="goals")


@goals_app.command("list")
def list_goals(
    file: str = typer.Option(None, "--file", "-f", help="Also list the goals of this YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the goal families, molecules and (with --file) a file's goals."""
    rows = []
    for name, fam in FAMILIES.items():
        rows.append({"name": f"{name}-N", "kind": "lattice", "qubits": f"3..{MAX_LATTICE_QUBITS}",
                     "hamiltonian": fam.formula + " (periodic)", "params": fam.defaults})
        rows.append({"name": f"{name}-open-N", "kind": "lattice", "qubits": f"2..{MAX_LATTICE_QUBITS}",
                     "hamiltonian": fam.formula + " (open)", "params": fam.defaults})
    for mol in molecule_names():
        g = get_goal(mol)
        rows.append({"name": mol, "kind": "molecule", "qubits": str(g.num_qubits),
                     "hamiltonian": f"{len(g.hamiltonian)} Pauli terms", "params": {}})
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
    table = Table(title="quantum-mind goals (N = number of qubits, e.g. tfim-8)")
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
    table = Table(show_header=False, title=f"goal {goal.name}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key in ("description", "kind", "num_qubits", "exact_energy", "reference_energy", "max_depth",
                "allowed_gates", "num_terms", "hamiltonian"):
        value = summary[key]
        if key == "exact_energy":
            value = f"{value:.10f}"
        elif key == "allowed_gates":
            value = ", ".join(value)
        table.add_row(key, str(value))
    console.print(table)
