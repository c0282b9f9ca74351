"""``qmind generate``: one JSON object per call, rich output otherwise, exit 2 with the valid choices on bad input."""

import ast
import json
import os
import pathlib
import subprocess
import sys

from tests.generation.lessons import TFIM_CONTEXT
from tests.tinymodel import SAMPLE_CODE
from workers.evaluation.goals import get_goal
from workers.generation.prompts import SYSTEM_PROMPT, render_prompt

ROOT = pathlib.Path(__file__).resolve().parents[2]


def qmind(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QMIND_GEN_")}  # defaults, whatever the shell
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], check=False, cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def test_json_output_is_one_object_with_prompt_and_three_candidates():
    result = qmind("generate", "--goal", "tfim-6", "--seed", "4", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["system_prompt"] == SYSTEM_PROMPT
    assert out["prompt"] == render_prompt(get_goal("tfim-6"), "")
    assert [c["temperature"] for c in out["candidates"]] == [0.5, 0.7, 0.9]
    for c in out["candidates"]:
        assert set(c) >= {"temperature", "code", "raw", "tokens"}
        assert "def create_ansatz(num_qubits: int) -> QuantumCircuit:" in c["code"]
        ast.parse(c["code"])
    assert out["generator"] == "procedural" and out["seed"] == 4


def test_memory_context_and_temperatures_reach_the_batch():
    result = qmind("generate", "--goal", "xy-4", "--memory-context", "best: Givens blocks",
                   "--temperatures", "0.3,1.1", "--json")
    out = json.loads(result.stdout)
    assert "CONTEXT:\nbest: Givens blocks\n" in out["prompt"]
    assert [c["temperature"] for c in out["candidates"]] == [0.3, 1.1]


def test_rich_output_shows_the_prompt_and_each_candidates_code():
    result = qmind("generate", "--goal", "heisenberg-4")
    assert result.returncode == 0, result.stderr
    assert "prompt for heisenberg-4" in result.stdout and "TASK: Generate a variational ansatz" in result.stdout
    assert result.stdout.count("def create_ansatz") == 3
    assert "T = 0.5" in result.stdout and "T = 0.9" in result.stdout


def test_a_bad_goal_model_or_adapter_exits_2_and_lists_what_is_valid(tmp_path):
    bad_goal = qmind("generate", "--goal", "ising-9", "--json")
    assert bad_goal.returncode == 2 and "tfim-N" in json.loads(bad_goal.stdout)["error"]
    bad_model = qmind("generate", "--goal", "tfim-4", "--generator", "transformers", "--model", "gpt-17")
    assert bad_model.returncode == 2 and "qwen2.5-coder-7b-instruct" in bad_model.stderr
    bad_adapter = qmind("generate", "--goal", "tfim-4", "--generator", "transformers", "--adapter", str(tmp_path),
                        "--json")
    assert bad_adapter.returncode == 2 and "adapter_config.json" in json.loads(bad_adapter.stdout)["error"]
    bad_generator = qmind("generate", "--goal", "tfim-4", "--generator", "gpt", "--json")
    assert bad_generator.returncode == 2 and "procedural" in json.loads(bad_generator.stdout)["error"]
    bad_temps = qmind("generate", "--goal", "tfim-4", "--temperatures", "hot", "--json")
    assert bad_temps.returncode == 2 and "comma-separated" in json.loads(bad_temps.stdout)["error"]


def test_the_transformers_generator_runs_from_the_cli_on_a_local_checkpoint(tiny_checkpoint):
    result = qmind("generate", "--goal", "tfim-4", "--generator", "transformers", "--model",
                   str(tiny_checkpoint.base_dir), "--adapter", str(tiny_checkpoint.adapter_dir), "--temperatures",
                   "0", "--max-new-tokens", "200", "--memory-context", TFIM_CONTEXT, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    (candidate,) = out["candidates"]
    assert candidate["code"] == SAMPLE_CODE and candidate["tokens"] > 100
    assert out["model"] == str(tiny_checkpoint.base_dir) and out["adapter"] == str(tiny_checkpoint.adapter_dir)
