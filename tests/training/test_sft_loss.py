"""SFT trains what ``qmind train base`` trained: the assistant turn of the same rendered text (issue 13).

A tiny Qwen2 learns a few corpus pairs with the base trainer's own loop (loss on the assistant turn only); SFT's
loss at step 0 (the LoRA update is still zero) on the same pairs, written as `qmind export sft` rows, must then be
the base trainer's loss on them, and SFT's labels must leave the system and user prompts out.
"""

from __future__ import annotations

import time

import pytest
import torch

from tests.tinymodel import build_model
from training.backend import load_for_training
from training.base_config import BaseSettings
from training.base_corpus import chat_pair, procedural_examples
from training.base_model import _batch, _encode, _loss, _train
from training.dataset_files import write_rows
from training.export import messages_for
from training.sft import as_prompt_completion, sft_trainer, train_sft
from training.sft_config import SFTSettings
from training.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def learned_base(tmp_path_factory):
    """(checkpoint folder, corpus examples, the base trainer's loss on them) after 40 steps of the base loop."""
    examples = procedural_examples(["tfim-4", "xy-5"], 2, seed=0, workers=1)
    tokenizer = train_tokenizer([t for e in examples for t in (e.prompt, e.completion)], 700)
    model = build_model(tokenizer)
    encoded = _encode(tokenizer, examples, 4096)
    settings = BaseSettings(max_steps=40, batch_size=2, learning_rate=5e-3)
    _train(model, encoded, settings, tokenizer.pad_token_id, time.monotonic() + 300)
    with torch.no_grad():
        ids, labels = _batch(encoded, tokenizer.pad_token_id, "cpu")
        loss = float(_loss(model, ids, labels))  # the base loop's loss: the mean over completion tokens
    out = tmp_path_factory.mktemp("learned-base")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, examples, loss


def _export_rows(examples) -> list[dict]:
    return [{"messages": [*messages_for(None, e.prompt), {"role": "assistant", "content": e.completion}],
             "split": "train"} for e in examples]


def _settings(base, **changes) -> SFTSettings:
    return SFTSettings(base_model=str(base), load_in_4bit=False, backend="peft", max_steps=1, learning_rate=1e-9,
                       per_device_train_batch_size=8, gradient_accumulation_steps=1, logging_steps=1,
                       dataloader_num_workers=0, save_steps=10_000, **changes)


def test_sft_loss_at_step_0_is_the_base_trainers_loss_on_the_same_pairs(learned_base, tmp_path):
    base, examples, base_loss = learned_base
    data = tmp_path / "sft.jsonl"
    write_rows(_export_rows(examples), data, meta={"kind": "sft"})
    result = train_sft(data, settings=_settings(base), checkpoints_root=tmp_path / "ck",
                       trainer_root=tmp_path / "tr", do_register=False)
    assert result.config["first_loss"] == pytest.approx(base_loss, rel=0.05), (result.config["first_loss"], base_loss)
    assert base_loss < 4.0  # the base learned its completions: a loss over the prompts too would stand far above it


@pytest.mark.parametrize("full_loss", [False, True])
def test_sft_labels_cover_the_assistant_turn_only_unless_full_loss(learned_base, tmp_path, full_loss):
    from datasets import Dataset

    base, examples, _ = learned_base
    settings = _settings(base, packing=False, assistant_only_loss=not full_loss)
    loaded = load_for_training(str(base), settings.lora, backend="peft", load_in_4bit=False)
    train = as_prompt_completion(Dataset.from_list(_export_rows(examples)).select_columns(["messages"]))
    trainer = sft_trainer(loaded, settings, train, train.select([]), output_dir=str(tmp_path / "tr"))
    for row, example in zip(trainer.train_dataset, examples):
        prompt, completion = chat_pair(loaded.tokenizer, example)
        trained = [t for t in row["labels"] if t != -100]
        if full_loss:
            assert trained == row["input_ids"]
        else:
            assert loaded.tokenizer.decode(trained) == completion
            assert completion.startswith("```python\n") and completion.endswith("```<|im_end|>\n")
            assert loaded.tokenizer.decode(row["input_ids"]) == prompt + completion
