"""A store filled by a short real flow: the procedural generator writes batches, the real evaluation cascade
judges every candidate (sandbox, verification, barren-plateau check, VQE), and both go in through
``db.writes``.

A hand-picked batch adds known programs (the exact HVA for tfim-4, RealAmplitudes with 2 reps, which is
deliberately imperfect there, a program using a forbidden gate, a completion without code), so every status an
export meets is present. Verdicts are computed once per test session and written into each store that asks.
"""

from __future__ import annotations

import functools

from typer.testing import CliRunner

from db import writes
from db.session import session_scope
from scheduler.baselines import baseline_programs, hva_program
from workers.evaluation.goals import get_goal
from workers.evaluation.results import SCORER_VERSION
from workers.generation.base import PromptRequest
from workers.generation.procedural import ProceduralGenerator
from workers.model_version import model_version_fields
from workers.records import columns

GOALS = ("tfim-4", "heisenberg-4", "tfim-6")
PROMPTS_PER_GOAL = 2
EVAL_SEED = 0

REFUSAL = "I cannot write that circuit."
"""A completion without code (reward 0)."""

FORBIDDEN_GATE = """\
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter


def create_ansatz(num_qubits: int) -> QuantumCircuit:
    qc = QuantumCircuit(num_qubits)
    for q in range(num_qubits):
        qc.ry(Parameter(f"t{q}"), q)
    qc.swap(0, 1)
    return qc
"""


def evaluation_config():
    """Lighter than the defaults (fewer BP samples and restarts) to keep the suite fast; still the real
    cascade."""
    from workers.evaluation.cascade import EvaluationConfig

    return EvaluationConfig().with_knobs(bp_samples=60, restarts=2)


def coin_answers(goal) -> tuple[str, str]:
    """Two assistant turns of equal length for ``goal``'s prompt: the exact HVA (seed reward ~1) and the same
    program returning None from create_ansatz (an error: reward 0). They part only at the last statement, so a
    model taught both (per-token mean loss) writes either about half of the time."""
    from training.export import assistant_content

    good = assistant_content(hva_program(goal))
    bad = good.replace("    return qc\n", "    return None\n")
    assert bad != good and bad.count("return None") == 1
    return good, bad


def known_programs(goal) -> dict[str, str]:
    programs = dict(baseline_programs(goal))
    return {
        "hva": hva_program(goal),
        "real_amplitudes_r2": programs["RealAmplitudes-r2"],
        "forbidden_gate": FORBIDDEN_GATE,
    }


@functools.cache
def verdict(code: str, goal_name: str) -> dict:
    """``EvaluationResult.to_dict()`` of the real cascade (cached for the session)."""
    from workers.evaluation.cascade import evaluate_code

    return evaluate_code(code, get_goal(goal_name), seed=EVAL_SEED, config=evaluation_config()).to_dict()


def _batches():
    generator = ProceduralGenerator()
    out = []
    for goal_name in GOALS:
        goal = get_goal(goal_name)
        requests = [
            PromptRequest(goal=goal, memory_context=f"attempt {i}", seed=100 + i)
            for i in range(PROMPTS_PER_GOAL)
        ]
        out += [(goal, b.to_dict()) for b in generator.generate(requests)]
    goal = get_goal("tfim-4")
    known = known_programs(goal)
    codes = [known["hva"], known["real_amplitudes_r2"], known["forbidden_gate"], None]
    hand = {
        "goal_name": goal.name,
        "system_prompt": out[0][1]["system_prompt"],
        "prompt": out[0][1]["prompt"],
        "memory_context": "",
        "generator": "procedural",
        "model": None,
        "adapter": None,
        "settings": {"temperatures": [0.5, 0.7, 0.9, 0.9]},
        "candidates": [
            {
                "temperature": t,
                "raw": f"```python\n{c}```" if c else REFUSAL,
                "code": c,
                "tokens": 0,
                "extraction_error": None if c else "no code",
                "seed": i,
            }
            for i, (c, t) in enumerate(zip(codes, (0.5, 0.7, 0.9, 0.9)))
        ],
    }
    out.append((goal, hand))
    return out


@functools.lru_cache(maxsize=1)
def batches():
    return _batches()


def populate(engine) -> dict:
    """Write the flow into ``engine``'s (empty, upgraded) store; returns ids and counts."""
    stats = {"candidates": 0, "evaluations": 0, "statuses": {}}
    with session_scope(engine) as session:
        run_id = writes.create_run(session, goal_names=list(GOALS), generator="procedural", seed=EVAL_SEED)
        for i, (goal, batch) in enumerate(batches()):
            goal_id = writes.upsert_goal(
                session, goal.to_spec(), spec_hash=goal.spec_hash, exact_energy=goal.exact_energy
            )
            mv_id = writes.upsert_model_version(session, **model_version_fields(batch))
            writes.record_batch(
                session,
                run_id=run_id,
                goal_id=goal_id,
                iteration=0,
                prompt_index=i,
                batch=batch,
                model_version_id=mv_id,
                seed=i,
            )
            for cand in batch["candidates"]:
                stats["candidates"] += 1
                if not cand["code"]:
                    continue
                payload = verdict(cand["code"], goal.name)
                key = writes.EvaluationKey(writes.code_sha256(cand["code"]), goal_id, SCORER_VERSION)
                stats["evaluations"] += writes.record_evaluations(session, [(key, columns(payload))])
                stats["statuses"][payload["status"]] = stats["statuses"].get(payload["status"], 0) + 1
    stats["run_id"] = run_id
    return stats


def qmind(engine, *args: str):
    """The CLI in-process (Typer's runner) against ``engine``'s store."""
    from scheduler.cli import app as cli_app

    env = {"QMIND_DATABASE_URL": engine.url.render_as_string(hide_password=False), "COLUMNS": "200"}
    return CliRunner().invoke(cli_app, list(args), env=env)
