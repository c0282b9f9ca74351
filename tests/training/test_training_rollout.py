"""GRPO rollouts on the CUDA-graph decoder (training/rollout.py), on CPU: the decoder's step runs eagerly here, so
the weight merge, the TRL hook and the sampling settings are checked; the graph capture itself only on CUDA."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
import yaml

from tests.tinymodel import add_lora, build_model, build_tokenizer
from tests.training.storeflow import qmind
from training.errors import TrainingError
from training.grpo import resolve_vllm
from training.rollout import cut_after_eos, decoding_copy, sync_weights


def test_the_decoding_copy_computes_what_the_policy_with_its_lora_computes():
    tokenizer = build_tokenizer()
    policy = add_lora(build_model(tokenizer), r=4, seed=1).eval()  # random A and B: the LoRA changes outputs
    copy = decoding_copy(policy, torch.device("cpu"))
    ids = torch.tensor([tokenizer("def create_ansatz(num_qubits):")["input_ids"]])
    with torch.no_grad():
        with policy.disable_adapter():
            base_logits = policy(input_ids=ids).logits
        want = policy(input_ids=ids).logits
        written = sync_weights(policy, copy)
        got = copy(input_ids=ids).logits
    assert written == len(list(copy.parameters())) + len(list(copy.buffers()))
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert not torch.allclose(got, base_logits, atol=1e-3)  # the LoRA was merged, not left out


def test_a_later_sync_follows_the_trained_lora():
    tokenizer = build_tokenizer()
    policy = add_lora(build_model(tokenizer), r=4, seed=1).eval()
    copy = decoding_copy(policy, torch.device("cpu"))
    sync_weights(policy, copy)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = copy(input_ids=ids).logits.clone()
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.mul_(3.0)
        sync_weights(policy, copy)
        assert torch.allclose(copy(input_ids=ids).logits, policy(input_ids=ids).logits, atol=1e-5)
    assert not torch.allclose(before, copy(input_ids=ids).logits, atol=1e-3)


def test_completions_end_after_their_first_end_of_sequence_id():
    assert cut_after_eos([4, 5, 9, 6, 9], {9}) == [4, 5, 9]
    assert cut_after_eos([4, 5], {9}) == [4, 5]


def test_graph_rollouts_refuse_vllm_and_unknown_engines():
    assert resolve_vllm(None, "graph") is False
    with pytest.raises(TrainingError, match="replaces vLLM"):
        resolve_vllm(True, "graph")
    with pytest.raises(TrainingError, match="unknown rollout engine 'fast'"):
        resolve_vllm(None, "fast")


@pytest.mark.slow
def test_a_grpo_step_with_graph_rollouts_samples_the_taught_policy(flow_sqlite, grpo_export, hva_checkpoint,
                                                                    tmp_path):
    """The tiny model answers the tfim-4 prompt with the exact HVA only with its LoRA: rewards > 0.9 from the
    cascade mean the rollouts came from the policy with the LoRA merged into the decoding copy."""
    engine, _ = flow_sqlite
    result = qmind(engine, "train", "grpo", "--data", str(grpo_export), "--adapter", str(hva_checkpoint.adapter_dir),
                   "--model", str(hva_checkpoint.base_dir), "--max-steps", "1", "--max-completion-length", "400",
                   "--temperature", "0.1", "--repetition-penalty", "1.0", "--reward-workers", "2",
                   "--bp-samples", "60", "--restarts", "2", "--rollout", "graph", "--no-register",
                   "--checkpoints", str(tmp_path / "checkpoints"), "--trainer-dir", str(tmp_path / "trainer"),
                   "--json")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((pathlib.Path(json.loads(result.stdout)["checkpoint"]) / "config.yaml").read_text())
    [step] = config["reward_history"]
    assert step["rewards/seed_reward/mean"] > 0.9 and step["valid"] == 1.0
    rollout = config["rollout"]
    assert rollout["engine"] == "graph" and config["training_config"]["rollout"] == "graph"
    assert rollout["decoder"]["rows"] == 4 and rollout["decoder"]["syncs"] == 1
    assert rollout["generation"]["rows"] == 4 and rollout["generation"]["completion_tokens"] > 50
