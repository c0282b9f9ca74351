"""The report directory of a run: three PNG plots per goal and one HTML page that shows them with the best code.

- ``<goal>-error-per-iteration.png``: best error so far after each iteration, baselines as dashed lines;
- ``<goal>-pareto.png``: error against two-qubit-gate count for every scored candidate, the Pareto front drawn;
- ``<goal>-gradient-variance.png``: Var[dE/dtheta] against qubit count for the best candidates and the baselines
  (a straight fall on the log axis is a barren plateau);
- ``<goal>-hardware-pareto.png`` (goals scored with the hardware stage only): noiseless and noisy error against
  two-qubit gates after routing to the device, the noisy error's Pareto front drawn (``report_hardware.py``).
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import pathlib
from collections.abc import Sequence

from .report_hardware import plot_hardware_pareto
from .report_points import ERROR_FLOOR, ReportPoint, new_plot, pareto_front, save_plot

_BASE_MARKERS = "sD^vP*Xph"


def _err(x: float) -> float:
    return max(x, ERROR_FLOOR)


def plot_error_per_iteration(goal: str, points: Sequence[ReportPoint], iterations: int, path: pathlib.Path) -> None:
    fig, ax = new_plot()
    best, xs, ys = math.inf, [], []
    found = [p for p in points if not p.baseline and p.error is not None]
    for it in range(iterations):
        errs = [p.error for p in found if p.iteration == it]
        if errs:
            best = min(best, min(errs))
        if math.isfinite(best):
            xs.append(it + 1)
            ys.append(_err(best))
    if xs:
        ax.plot(xs, ys, marker="o", color="tab:blue", label="best discovered so far")
    for i, p in enumerate(q for q in points if q.baseline and q.error is not None):
        ax.axhline(_err(p.error), ls="--", lw=1, alpha=0.7, color=f"C{(i + 1) % 10}", label=f"baseline {p.label}")
    ax.axhspan(ERROR_FLOOR * 0.5, ERROR_FLOOR * 2, color="green", alpha=0.08, lw=0)
    ax.set_xlim(0.5, iterations + 0.5)
    save_plot(fig, ax, path, xlabel="iteration", ylabel=f"energy error (E - E_exact; floor {ERROR_FLOOR:g})",
              title=f"{goal}: best error per iteration", integer_x=True)


def plot_pareto(goal: str, points: Sequence[ReportPoint], path: pathlib.Path) -> None:
    fig, ax = new_plot()
    found = [p for p in points if not p.baseline and p.error is not None]
    base = [p for p in points if p.baseline and p.error is not None]
    if found:
        ax.scatter([p.two_qubit_gates for p in found], [_err(p.error) for p in found], s=18, alpha=0.5,
                   label="discovered", color="tab:blue")
    for i, p in enumerate(base):
        ax.scatter([p.two_qubit_gates], [_err(p.error)], s=46, marker=_BASE_MARKERS[i % len(_BASE_MARKERS)],
                   label=f"baseline {p.label}", color=f"C{(i + 1) % 10}", edgecolor="black", linewidth=0.5)
    front = pareto_front(found)
    if front:
        ax.step([p.two_qubit_gates for p in front], [_err(p.error) for p in front], where="post", color="tab:red",
                label="Pareto front (discovered)")
    save_plot(fig, ax, path, xlabel="two-qubit gates", ylabel="energy error",
              title=f"{goal}: error against two-qubit gates")


def plot_gradient_variance(goal: str, points: Sequence[ReportPoint], path: pathlib.Path, top: int = 3) -> None:
    fig, ax = new_plot()
    best, seen = [], set()
    for p in sorted((p for p in points if not p.baseline and p.bp_sizes and p.error is not None),
                    key=lambda p: p.error):
        key = (p.bp_sizes, tuple(round(v, 12) for v in p.bp_variances))
        if key not in seen and len(best) < top:  # renamed copies share one curve: draw it once
            seen.add(key)
            best.append(p)
    shown = [(p, "-", "o") for p in best]
    shown += [(p, "--", "s") for p in points if p.baseline and p.bp_sizes]
    for p, style, marker in shown:
        ys = [max(v, 1e-16) for v in p.bp_variances]
        label = ("baseline " if p.baseline else "") + p.label + (
            f" (decay {p.decay_rate:+.2f}/qubit)" if p.decay_rate is not None else "")
        ax.plot(list(p.bp_sizes), ys, ls=style, marker=marker, label=label)
    if not shown:
        ax.text(0.5, 0.5, "no barren-plateau data", transform=ax.transAxes, ha="center")
    save_plot(fig, ax, path, xlabel="qubits", ylabel="Var[dE/dθ]",
              title=f"{goal}: gradient variance against system size", legend=bool(shown), integer_x=True)


def _fmt(x, spec=".3e") -> str:
    return "-" if x is None else format(x, spec)


def _table(points: Sequence[ReportPoint]) -> str:
    sets = any(p.mean_error is not None for p in points)
    hardware = any(p.routed_two_qubit_gates is not None for p in points)
    extra_head = ("<th>mean error</th><th>extrapolation error</th>" if sets else "") + \
        ("<th>routed 2q</th><th>noisy error</th>" if hardware else "")

    def extra(p: ReportPoint) -> str:
        return (f"<td>{_fmt(p.mean_error)}</td><td>{_fmt(p.extrapolation_error)}</td>" if sets else "") + \
            (f"<td>{_fmt(p.routed_two_qubit_gates, 'd')}</td><td>{_fmt(p.noisy_error)}</td>" if hardware else "")

    rows = "".join(
        f"<tr><td>{html.escape(p.label)}</td><td>{_fmt(p.error)}</td><td>{p.depth}</td><td>{p.num_parameters}</td>"
        f"<td>{p.two_qubit_gates}</td><td>{_fmt(p.decay_rate, '+.3f')}</td>"
        f"<td>{'yes' if p.has_barren_plateau else 'no'}</td>{extra(p)}</tr>"
        for p in points)
    return ("<table><tr><th>candidate</th><th>error</th><th>depth</th><th>params</th><th>2q gates</th>"
            f"<th>grad-var decay /qubit</th><th>barren plateau</th>{extra_head}</tr>{rows}</table>")


def write_report(directory: pathlib.Path, run: dict, goals: dict[str, dict]) -> pathlib.Path:
    """Write plots + index.html + summary.json into ``directory``; returns the HTML path.

    ``goals`` maps a goal name to {"exact_energy": float, "iterations": int, "points": [ReportPoint, ...]}.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sections = []
    for name, info in goals.items():
        points = info["points"]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        files = {
            "iter": f"{safe}-error-per-iteration.png",
            "pareto": f"{safe}-pareto.png",
            "bp": f"{safe}-gradient-variance.png",
        }
        plot_error_per_iteration(name, points, info["iterations"], directory / files["iter"])
        plot_pareto(name, points, directory / files["pareto"])
        plot_gradient_variance(name, points, directory / files["bp"])
        hardware = ""
        if any(p.routed_two_qubit_gates is not None for p in points):
            files["hardware"] = f"{safe}-hardware-pareto.png"
            plot_hardware_pareto(name, points, directory / files["hardware"])
            hardware = f'<img src="{files["hardware"]}" alt="error against routed two-qubit gates">'
        found = sorted((p for p in points if not p.baseline and p.error is not None), key=lambda p: p.error)
        base = sorted((p for p in points if p.baseline), key=lambda p: (p.error is None, p.error or 0))
        best_code = html.escape(found[0].code) if found else "(no scored candidate)"
        sections.append(f"""
<section><h2>{html.escape(name)}</h2>
<p>exact ground energy {info['exact_energy']:.10f}; {len([p for p in points if not p.baseline])} candidates
evaluated, {len(found)} scored.</p>
<div class="plots"><img src="{files['iter']}" alt="best error per iteration"><img src="{files['pareto']}"
alt="error against two-qubit gates"><img src="{files['bp']}" alt="gradient variance against qubits">{hardware}</div>
<h3>Best discovered candidates</h3>{_table(found[:10])}
<h3>Baselines</h3>{_table(base)}
<h3>Best code</h3><pre><code>{best_code}</code></pre></section>""")
    meta = html.escape(json.dumps(run, indent=1, default=str))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>quantum-mind run {html.escape(str(run.get('id')))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}} img{{width:32%;min-width:380px}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}} .plots{{display:flex;flex-wrap:wrap;gap:8px}}</style></head>
<body><h1>quantum-mind run {html.escape(str(run.get('id')))}</h1>
{''.join(sections)}
<h2>Run settings</h2><pre>{meta}</pre></body></html>"""
    path = directory / "index.html"
    path.write_text(page)
    summary = {name: [dataclasses.asdict(p) for p in info["points"]] for name, info in goals.items()}
    (directory / "points.json").write_text(json.dumps({"run": run, "goals": summary}, default=str, indent=1))
    return path
