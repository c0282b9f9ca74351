"""A benchmark-only task: the production evaluation path (attempt counted and committed, verdict written and
committed, late acknowledgement) with a trivial evaluator instead of the cascade, so the queue and the store are
measured alone. Workers load it with ``celery -A workers.app worker --include benchmarks.queue_tasks``."""

from __future__ import annotations

import time
from typing import Any

from workers.app import app
from workers.tasks import run_evaluation

BENCH_TASK = "qmind.bench.evaluate_trivial"


def trivial_verdict(code: str, goal_spec: dict, *, seed: int, soft_limit: float, sleep_s: float = 0.0) -> dict:
    """A fixed valid verdict shaped like ``EvaluationResult.to_dict()`` (optionally after a sleep)."""
    if sleep_s:
        time.sleep(sleep_s)
    return {"status": "valid", "errors": [], "stage": "done", "seed": seed, "timings": {"bench": 0.0},
            "verification": {"ok": True, "depth": 3, "num_parameters": 4, "gate_counts": {"ry": 4, "cx": 3},
                             "num_two_qubit_gates": 3},
            "bp": {"has_barren_plateau": False, "method": "scaling", "sizes": [4, 6], "variances": [0.1, 0.05]},
            "vqe": {"energy": -1.0, "exact_energy": -1.1, "error": 0.1, "relative_error": 0.09, "evaluations": 10,
                    "seconds": 0.0, "restarts": 1, "seeds": [seed], "success_fraction": 1.0},
            "reward": {"version": "bench", "seed_reward": 0.0, "shaped_reward": 0.5, "components": {}}}


@app.task(name=BENCH_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, acks_on_timeout=False)
def evaluate_trivial(self, candidate_id: int, seed: int = 0, sleep_s: float = 0.0) -> dict[str, Any]:
    return run_evaluation(self, candidate_id, seed, evaluate=lambda code, spec, *, lookup, **kw: trivial_verdict(
        code, spec, sleep_s=sleep_s, **kw))
