"""``qmind evaluate``: run the whole evaluation cascade on one candidate file."""

from __future__ import annotations

import pathlib

import typer
from rich.panel import Panel

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal

from . import app
from .common import (
    HARDWARE_HELP,
    HARDWARE_SHOTS_HELP,
    console,
    field_table,
    print_json,
    usage_error,
    with_hardware,
)

MAX_CODE_BYTES = 256 * 1024


@app.command("evaluate")
def evaluate(
    goal_name: str = typer.Option(..., "--goal", "-g", help="Goal name (tfim-8, h2, ...) or a goal YAML file."),
    code_file: pathlib.Path = typer.Option(..., "--code-file", "-c", help="Python file defining create_ansatz."),
    max_depth: int = typer.Option(None, "--max-depth", help="Override the goal's maximum circuit depth."),
    allowed_gates: str = typer.Option(None, "--allowed-gates", help="Override allowed gates, e.g. ry,rz,cx."),
    seed: int = typer.Option(0, "--seed", help="Seed for the BP sampler and the VQE restarts."),
    restarts: int | None = typer.Option(None, "--restarts", min=1, max=64, show_default="QMIND_VQE_RESTARTS, else 4",
                                        help="VQE restarts."),
    bp_samples: int | None = typer.Option(None, "--bp-samples", min=20, max=10_000,
                                          show_default="QMIND_BP_SAMPLES, else 200", help="Parameter samples per size."),
    hardware: bool = typer.Option(False, "--hardware", help=HARDWARE_HELP),
    hardware_shots: int = typer.Option(4000, "--hardware-shots", help=HARDWARE_SHOTS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Sandbox -> verify -> barren-plateau check -> VQE -> reward, for one candidate.

    Exit code 0 for every judged candidate (valid or not); 2 for usage errors.
    """
    from workers.evaluation.cascade import evaluate_code
    from workers.settings import scoring_settings

    try:
        goal = with_hardware(get_goal(goal_name, max_depth=max_depth, allowed_gates=allowed_gates),
                             enabled=hardware, shots=hardware_shots)
    except GoalError as exc:
        usage_error(str(exc), as_json=as_json)
    try:
        raw = code_file.read_bytes()
    except OSError as exc:
        usage_error(f"cannot read --code-file {code_file}: {exc.strerror or exc}", as_json=as_json)
    if len(raw) > MAX_CODE_BYTES:
        usage_error(f"--code-file {code_file} is {len(raw)} bytes; at most {MAX_CODE_BYTES} are accepted",
                    as_json=as_json)
    code = raw.decode("utf-8", errors="replace")
    config = scoring_settings().with_knobs(restarts=restarts, bp_samples=bp_samples)
    if as_json:
        result = evaluate_code(code, goal, seed=seed, config=config)
        print_json(result.to_cli_json())
        return
    with console.status(f"evaluating {code_file} on {goal.name} ({goal.num_qubits} qubits)..."):
        result = evaluate_code(code, goal, seed=seed, config=config)
    render_result(result.to_cli_json())


def render_result(out: dict) -> None:
    colour = "green" if out["status"] == "valid" else "red"
    table = field_table(f"goal {out['goal']}: [bold {colour}]{out['status']}[/]")
    for err in out["errors"]:
        table.add_row("error", err)
    if "depth" in out:
        table.add_row("depth / parameters", f"{out['depth']} / {out['num_parameters']}")
        table.add_row("gates", ", ".join(f"{k}:{v}" for k, v in sorted(out["gate_counts"].items())))
    bp = out.get("bp")
    if bp:
        variances = ", ".join(f"n={n}: {v:.3g}" for n, v in zip(bp["sizes"], bp["variances"]))
        table.add_row("barren plateau", f"{'YES' if bp['has_barren_plateau'] else 'no'} ({bp['reason']})")
        table.add_row("grad variance", variances)
        if bp.get("decay_rate") is not None:
            table.add_row("decay rate", f"{bp['decay_rate']:.3f} ± {bp.get('decay_rate_stderr') or 0:.3f} per qubit")
    vqe = out.get("vqe")
    if vqe:
        table.add_row("energy", f"{vqe['energy']:.10f}  (exact {vqe['exact_energy']:.10f})")
        table.add_row("error", f"{vqe['error']:.3e}  (relative {vqe['relative_error']:.2e})")
        table.add_row("VQE", f"{vqe['evaluations']} evaluations, {vqe['seconds']:.2f} s, "
                              f"{vqe['success_fraction']:.0%} of {vqe['restarts']} restarts reached the best")
    hw = out.get("hardware")
    if hw:
        table.add_row("routed (" + hw["backend"] + ")", f"{hw['routed_two_qubit_gates']} two-qubit gates, depth "
                      f"{hw['routed_depth']}, {hw['active_qubits']} physical qubits")
        noisy = (f"{hw['noisy_energy']:.6f} ± {hw['noisy_stderr']:.6f} (error {hw['noisy_error']:.3e}; "
                 f"{hw['shots']} shots over {hw['groups']} groups)") if hw.get("noisy_energy") is not None \
            else f"not measured: {hw['not_measured']}"
        table.add_row("noisy energy", noisy)
    if out.get("reward"):
        r = out["reward"]
        table.add_row("reward", f"seed {r['seed_reward']:.4f}, shaped {r['shaped_reward']:.4f} ({r['version']})")
    console.print(table)
    if out["status"] != "valid":
        console.print(Panel("\n".join(out["errors"]) or out["status"], title="what to fix", border_style="red"))
