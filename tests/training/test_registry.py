"""The model registry: ``--adapter latest`` / ``quantum-mind-vN`` resolve through the store; ``qmind models list``."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.training.storeflow import qmind
from training.errors import TrainingError
from training.registry import resolve_adapter


def test_latest_and_version_names_resolve_through_the_registry(store, sft_run, tmp_path):
    _, first, _ = sft_run
    with pytest.raises(TrainingError, match="no registered adapter yet"):
        resolve_adapter(store, "latest")
    assert qmind(store, "train", "register", str(first), "--json").exit_code == 0
    second = tmp_path / "quantum-mind-v2"
    shutil.copytree(first, second)
    config = yaml.safe_load((second / "config.yaml").read_text())
    config.update(version="v2", method="grpo", parent_adapter=str(first.resolve()), final_reward_mean=0.25)
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    assert qmind(store, "train", "register", str(second), "--json").exit_code == 0
    assert resolve_adapter(store, "latest") == str(second.resolve())
    assert resolve_adapter(store, "quantum-mind-v1") == str(first.resolve())
    assert resolve_adapter(store, str(first)) == str(first)  # a folder is taken as given
    with pytest.raises(TrainingError, match=r"'quantum-mind-v9'.*quantum-mind-v1"):
        resolve_adapter(store, "quantum-mind-v9")
    listed = qmind(store, "models", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)["models"]
    assert [r["name"] for r in rows] == ["quantum-mind-v1", "quantum-mind-v2"]
    assert rows[1]["parent"] == "quantum-mind-v1" and rows[1]["final_reward_mean"] == 0.25
    assert rows[0]["data_sha256"] == config["training_data"]["sha256"] and rows[0]["method"] == "sft"
    table = qmind(store, "models", "list")
    assert table.exit_code == 0 and "quantum-mind-v2" in table.stdout


def test_an_unknown_version_name_is_a_clear_cli_error(store):
    result = qmind(store, "eval-model", "--adapter", "quantum-mind-v7", "--generator", "transformers", "--json")
    assert result.exit_code == 2 and "no registered adapter 'quantum-mind-v7'" in json.loads(result.stdout)["error"]
