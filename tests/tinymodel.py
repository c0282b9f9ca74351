"""A tiny Qwen2-architecture checkpoint, built locally, for tests that need a real causal LM (no downloads).

What it builds, all with the same files and code paths as a real checkpoint:

- a byte-level BPE tokenizer trained on a few kilobytes of Qiskit-like code and the seed's prompt texts, with
  Qwen's special tokens (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``) and a Qwen-style ChatML chat template;
- a randomly initialised ``Qwen2ForCausalLM`` (2 layers, small hidden size), saved with ``save_pretrained``;
- a peft LoRA adapter on the seven projections (q/k/v/o/gate/up/down, like the seed's QLoRA setup);
  :func:`build_checkpoint` teaches base and adapter together so that base + adapter answers given chat prompts with
  given completions (greedy decoding then reproduces them exactly; the base alone does not).

Typical use (see ``tests/test_hf_backend.py``)::

    ckpt = build_checkpoint(tmp_path, lessons=[(chat_text, completion), ...])
    GeneratorConfig(generator="transformers", model=str(ckpt.base_dir), adapter=str(ckpt.adapter_dir))

Everything is seeded; building and teaching take a few seconds on one CPU core.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

import torch

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

SAMPLE_CODE = '''from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from math import pi

def create_ansatz(num_qubits: int) -> QuantumCircuit:
    """Hardware-efficient ansatz: RY and RZ rotations, then CZ on a ring."""
    qc = QuantumCircuit(num_qubits)
    theta = ParameterVector("theta", 2 * num_qubits)
    for q in range(num_qubits):
        qc.ry(theta[q], q)
        qc.rz(theta[num_qubits + q], q)
    for q in range(num_qubits - 1):
        qc.cz(q, q + 1)
    qc.cx(num_qubits - 1, 0)
    qc.rzz(Parameter("gamma"), 0, 1)
    qc.h(0)
    qc.x(1)
    qc.rx(pi / 2, 0)
    return qc
'''


def corpus() -> str:
    """The tokenizer's training text: sample code, the seed's prompts, and common Python/markdown fragments."""
    from workers.generation.prompts import SYSTEM_PROMPT, USER_TEMPLATE

    extra = ("```python\n", "```\n", "\n\n\n", "Here is the ansatz:\n", "The circuit uses", "import numpy as np\n",
             "0123456789 + - * / = ( ) [ ] { } , . : ; _ | < > # ' \" ~ ! ? @ & % ^ $ \\")
    return "\n".join([SAMPLE_CODE] * 4 + [SYSTEM_PROMPT, USER_TEMPLATE] * 4 + list(extra) * 4)


def build_tokenizer(vocab_size: int = 1000):
    """A byte-level BPE tokenizer trained on :func:`corpus` (``training.tokenizer``: Qwen2's normaliser and
    pre-tokeniser, Qwen's special tokens, a ChatML chat template)."""
    from training.tokenizer import train_tokenizer

    return train_tokenizer([corpus()], vocab_size)


def build_model(tokenizer, *, hidden_size: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                intermediate_size: int = 128, seed: int = 0):
    """A randomly initialised Qwen2ForCausalLM sized for the tokenizer (float32, CPU)."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id, do_sample=True, temperature=0.7, top_p=0.8, top_k=20,
        repetition_penalty=1.05,  # Qwen2.5's own defaults: the generator must override all of them
    )
    return model


def add_lora(model, *, r: int = 8, alpha: int = 16, dropout: float = 0.05, seed: int = 0):
    """Wrap ``model`` in a peft LoRA on the seven projections (the seed's target modules)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(LORA_TARGETS), bias="none",
                        task_type="CAUSAL_LM", init_lora_weights=False)
    return get_peft_model(model, config)


def teach(model, tokenizer, lessons: Sequence[tuple[str, str]], *, steps: int = 300, lr: float = 5e-3,
          seed: int = 0, target_loss: float = 0.01) -> float:
    """Train the trainable parameters so that each prompt text is answered by its completion (+ end of turn).

    ``lessons`` are (full model input, e.g. a chat-templated prompt; completion). Loss on completion tokens only;
    stops early once the mean loss is below ``target_loss``. Runs on one thread (faster than two contended ones on
    a shared machine). Returns the final mean loss.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _teach(model, tokenizer, lessons, steps=steps, lr=lr, seed=seed, target_loss=target_loss)
    finally:
        torch.set_num_threads(threads)


def _teach(model, tokenizer, lessons, *, steps, lr, seed, target_loss) -> float:
    torch.manual_seed(seed)
    eos = tokenizer.eos_token
    rows = []
    for prompt, completion in lessons:
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(completion + eos, add_special_tokens=False)["input_ids"]
        rows.append((torch.tensor([p + c]), torch.tensor([[-100] * len(p) + c])))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    model.train()
    loss_value = float("nan")
    for _ in range(steps):
        optimizer.zero_grad()
        total = 0.0
        for ids, labels in rows:
            loss = model(input_ids=ids, labels=labels).loss / len(rows)
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        loss_value = total
        if loss_value < target_loss:
            break
    model.eval()
    return loss_value


@dataclasses.dataclass(frozen=True)
class TinyCheckpoint:
    base_dir: pathlib.Path
    """save_pretrained output of the base model and its tokenizer."""
    adapter_dir: pathlib.Path
    """save_pretrained output of the LoRA adapter (adapter_config.json + adapter_model.safetensors)."""
    loss: float
    """Final training loss of the adapter on the lessons."""
    rank: int


def build_checkpoint(root: pathlib.Path, lessons: Sequence[tuple[str, str]] = (), *, rank: int = 8,
                     steps: int = 300, target_loss: float = 0.01) -> TinyCheckpoint:
    """Base model + tokenizer under ``root/base``, a LoRA adapter under ``root/adapter``; base and adapter are taught
    ``lessons`` together (the LoRA starts from random A and B), so only base + adapter answers them."""
    root = pathlib.Path(root)
    base_dir, adapter_dir = root / "base", root / "adapter"
    tokenizer = build_tokenizer()
    peft_model = add_lora(build_model(tokenizer), r=rank, alpha=2 * rank)
    for parameter in peft_model.parameters():  # base and adapter learn the lessons together: both are needed
        parameter.requires_grad_(True)
    loss = teach(peft_model, tokenizer, lessons, steps=steps, target_loss=target_loss) if lessons else float("nan")
    peft_model.save_pretrained(adapter_dir)  # adapter weights only
    base = peft_model.unload()  # the base model without the LoRA layers (not merged)
    base.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    return TinyCheckpoint(base_dir, adapter_dir, loss, rank)
