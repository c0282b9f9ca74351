"""Run hostile candidates from an UNPRIVILEGED evaluating process (started by tests/test_sandbox_unprivileged.py
under uid 65534). Reads a JSON job list on stdin, prints one JSON list of results. Not a test module."""

import json
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
jobs = json.load(sys.stdin)
sys.path[:0] = [root, *jobs["site"]]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _sandbox_util import hostile

from workers.evaluation.sandbox import SandboxConfig, isolation_status, run_candidate

os.environ["QMIND_TEST_SECRET"] = jobs["secret"]
out = {"pid": os.getpid(), "uid": os.getuid(), "results": []}
for job in jobs["jobs"]:
    subs = {k: (os.getpid() if v == "SELF" else v) for k, v in job["subs"].items()}
    cfg = SandboxConfig(isolation=job["mode"], python=jobs["python"], extra_read_paths=tuple(jobs["site"]),
                        **job["config"])
    result = run_candidate(hostile(job["program"], **subs), 3, config=cfg)
    out["results"].append({"job": job, "status": result.status, "error": result.error, "stdout": result.stdout,
                           "stderr": result.stderr[-3000:], "isolation": result.isolation,
                           "wall": result.wall_seconds})
out["status"] = isolation_status(SandboxConfig(python=jobs["python"], extra_read_paths=tuple(jobs["site"]))).mode
print(json.dumps(out))
