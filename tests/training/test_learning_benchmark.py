"""benchmarks/learning.py end to end at its --tiny size, and --resume after a run cut off before its last stage.

The tiny model learns nothing in two steps (every rate is 0); this checks the script's plumbing (the base trained
here, the discovery store, the exports, SFT, both GRPO rounds, eval-model after each stage, the table, JSON and PNG)
and that a resumed run keeps what was finished instead of redoing it.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _learning(out: pathlib.Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "learning.py"), "--tiny", "--workers", "1",
                           "--out", str(out), *extra], capture_output=True, text=True, env=env, timeout=500)


def test_the_learning_benchmark_runs_every_stage_and_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "learn"
    first = _learning(out)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((out / "learning.json").read_text())
    assert list(report["stages"]) == ["base", "sft", "grpo-1", "grpo-2"]
    for name, stage in report["stages"].items():
        assert stage["completions"] == 2, name  # --tiny: 2 completions per held-out goal, one goal
        assert set(stage["rates"]) >= {"syntax_valid", "verification_pass", "bp_free", "novel_patterns"}
    assert {"diff", "lo", "hi", "excludes_zero"} <= set(report["stages"]["grpo-1"]["vs_previous"])
    assert (out / "learning.png").stat().st_size > 1000
    assert "grpo-2: the mean held-out seed reward" in first.stdout

    # cut the run off before its last stage, as a time limit would, and resume it
    partial = json.loads((out / "learning.partial.json").read_text())
    assert list(partial["stages"]) == ["base", "sft", "grpo-1", "grpo-2"]
    del partial["stages"]["grpo-2"]
    (out / "learning.partial.json").write_text(json.dumps(partial))
    base_weights = next(pathlib.Path(partial["base"]).glob("*.safetensors"))
    stamp = base_weights.stat().st_mtime_ns
    store = (out / "store.db").stat().st_mtime_ns
    (out / "learning.json").unlink()

    again = _learning(out, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished stages ['base', 'sft', 'grpo-1']" in again.stdout
    assert base_weights.stat().st_mtime_ns == stamp  # the base was not trained again
    assert (out / "store.db").stat().st_mtime_ns == store  # nor the store filled again
    resumed = json.loads((out / "learning.json").read_text())
    assert list(resumed["stages"]) == ["base", "sft", "grpo-1", "grpo-2"]
    for name in ("base", "sft", "grpo-1"):  # kept as they were
        assert resumed["stages"][name]["adapter"] == report["stages"][name]["adapter"]
        assert resumed["stages"][name]["seed_reward"] == report["stages"][name]["seed_reward"]
    assert resumed["stages"]["grpo-2"]["adapter"] != resumed["stages"]["grpo-1"]["adapter"]
