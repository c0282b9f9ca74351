"""The model table: the base models a generator can load, by short name (../shared/seed/MODEL-CONFIG.md).

This is the only place that knows anything model-specific (Hugging Face ids, chat-template quirks, end-of-turn
tokens, LoRA target modules). Everything else takes a :class:`ModelSpec` or a local directory.
"""

from __future__ import annotations

import dataclasses
import pathlib

LLAMA_STYLE_LORA_TARGETS: tuple[str, ...] = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One base model the project knows."""

    key: str
    """Short name used in configuration and on the command line."""
    hf_id: str
    """Hugging Face repository id (what ``from_pretrained`` / ``vllm serve`` is given when no local path is)."""
    params_billion: float
    context_length: int
    chat_format: str
    """What the tokenizer's chat template produces (for humans; the template itself comes with the tokenizer)."""
    end_of_turn: tuple[str, ...]
    """Tokens that end the assistant's turn (the tokenizer's eos plus template-specific ones)."""
    lora_target_modules: tuple[str, ...] = LLAMA_STYLE_LORA_TARGETS
    """Module names a LoRA adapter attaches to (the seed's seven projections for Llama-style blocks)."""
    system_role: bool = True
    """Whether the chat template accepts a ``system`` message (otherwise it is folded into the user turn)."""
    license: str = ""
    notes: str = ""


MODELS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec(
            key="qwen2.5-coder-7b-instruct",
            hf_id="Qwen/Qwen2.5-Coder-7B-Instruct",
            params_billion=7.61,
            context_length=131072,
            chat_format="ChatML: <|im_start|>role\\n...<|im_end|>; default system prompt added when none is given",
            end_of_turn=("<|im_end|>", "<|endoftext|>"),
            license="Apache-2.0",
            notes="The seed's primary model. 28 layers, hidden 3584, 28 query / 4 KV heads, vocab 152064.",
        ),
        ModelSpec(
            key="deepseek-coder-6.7b-instruct",
            hf_id="deepseek-ai/deepseek-coder-6.7b-instruct",
            params_billion=6.74,
            context_length=16384,
            chat_format="'### Instruction:' / '### Response:' blocks after a system line; ends with <|EOT|>",
            end_of_turn=("<|EOT|>",),
            license="DeepSeek License",
            notes="Llama architecture; the template inserts its own system text when none is given.",
        ),
        ModelSpec(
            key="codellama-7b-instruct",
            hf_id="codellama/CodeLlama-7b-Instruct-hf",
            params_billion=6.74,
            context_length=16384,
            chat_format="Llama-2: <s>[INST] <<SYS>>system<</SYS>> user [/INST]; the system text sits inside the "
                        "first [INST]",
            end_of_turn=("</s>",),
            license="Llama 2 Community License",
            notes="Older Llama-2 architecture; no default system prompt.",
        ),
        ModelSpec(
            key="llama-3.1-8b-instruct",
            hf_id="meta-llama/Llama-3.1-8B-Instruct",
            params_billion=8.03,
            context_length=131072,
            chat_format="<|start_header_id|>role<|end_header_id|>\\n\\n...<|eot_id|>; the template adds a "
                        "'Cutting Knowledge Date' system preamble",
            end_of_turn=("<|eot_id|>", "<|end_of_text|>"),
            license="Llama 3.1 Community License (gated on the Hub)",
            notes="The seed's 'Llama-3.2-8B' does not exist (Llama 3.2 ships 1B/3B/11B/90B); the 8B instruct "
                  "model is Llama 3.1.",
        ),
        ModelSpec(
            key="phi-4",
            hf_id="microsoft/phi-4",
            params_billion=14.7,
            context_length=16384,
            chat_format="<|im_start|>role<|im_sep|>...<|im_end|>",
            end_of_turn=("<|im_end|>", "<|endoftext|>"),
            lora_target_modules=("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
            license="MIT",
            notes="14B: about 29 GB in 16-bit. Phi-3 architecture with fused qkv_proj / gate_up_proj, so its LoRA "
                  "targets differ from the seven Llama-style projections.",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-7b-instruct"


class UnknownModelError(ValueError):
    """A model name that is neither in the table, a known Hugging Face id, nor an existing directory."""


def lookup(name: str) -> ModelSpec | None:
    """The spec for a short name or a Hugging Face id (case-insensitive), or None."""
    lowered = name.strip().lower()
    if lowered in MODELS:
        return MODELS[lowered]
    for spec in MODELS.values():
        if spec.hf_id.lower() == lowered:
            return spec
    return None


def resolve(name: str | None) -> tuple[str, ModelSpec | None]:
    """(what to pass to ``from_pretrained``, the table entry if any) for a short name, Hub id or local directory.

    A local directory wins (its config decides the architecture); otherwise the name must be in the table.
    """
    name = (name or DEFAULT_MODEL).strip()
    path = pathlib.Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownModelError(f"model directory {path} has no config.json; expected a directory written by "
                                    f"save_pretrained (config.json, weights, tokenizer files)")
        return str(path.resolve()), None
    spec = lookup(name)
    if spec is None:
        raise UnknownModelError(
            f"unknown model '{name}': not a directory and not in the model table. Valid names: "
            + ", ".join(f"{s.key} ({s.hf_id})" for s in MODELS.values())
            + ", or a local directory containing config.json"
        )
    return spec.hf_id, spec


def table_rows() -> list[dict]:
    """The table as dictionaries (for the CLI and the docs)."""
    return [dataclasses.asdict(s) for s in MODELS.values()]
