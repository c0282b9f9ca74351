"""Configuration of the generator backends (environment variables ``QMIND_GEN_*``).

Defaults are the seed document's inference and batch settings (../shared/seed/MODEL-CONFIG.md): max_new_tokens 1024,
top_p 0.9, top_k 50, repetition_penalty 1.1, stop sequences ["```\\n", "\\n\\n\\n"], do_sample, float16, three
completions per prompt at temperatures 0.5 / 0.7 / 0.9. The stop sequences count only after ``def create_ansatz``
(:mod:`stopping` says why; ``stop_after_definition=False`` applies them literally).

Order of the sampling transforms, in every backend: repetition penalty, then temperature, then top-k, then top-p,
then the draw. transformers: the backend does not use generate's own warpers; one logits processor of ours
(``sampling.RowSampler``) applies the per-row temperature, top-k, top-p and the seeded draw in that order, after
generate's repetition-penalty processor. vLLM: its sampler applies penalties, then temperature, then top-k/top-p
(vllm/v1/sample/sampler.py); the server path hands the same numbers to that sampler.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .base import DEFAULT_TEMPERATURES

GENERATORS = ("procedural", "transformers", "vllm", "vllm-server")
SEED_STOP: tuple[str, ...] = ("```\n", "\n\n\n")


class GeneratorConfig(BaseSettings):
    """Which backend generates candidates, from which model, with which sampling settings."""

    model_config = SettingsConfigDict(env_prefix="QMIND_GEN_", extra="forbid", frozen=True)

    generator: Literal["procedural", "transformers", "vllm", "vllm-server"] = Field(
        "procedural", description="Backend: procedural (no model), transformers (+peft), vllm, or vllm-server "
                                  "(an OpenAI-compatible `vllm serve`).")
    model: str | None = Field(
        None, description="Base model: a short name from the model table, its Hugging Face id, or a local "
                          "directory. None means the table's default (qwen2.5-coder-7b-instruct).")
    adapter: str | None = Field(
        None, description="LoRA adapter directory (adapter_config.json + weights), or None for the base model.")
    adapter_id: int | None = Field(
        None, description="Integer id of the adapter for vLLM's LoRARequest (use the model-version id from the "
                          "store); None derives a stable id from the adapter path.")
    temperatures: tuple[float, ...] = Field(
        DEFAULT_TEMPERATURES, description="One completion per prompt at each of these temperatures.")
    max_new_tokens: int = Field(1024, ge=1, description="Largest number of completion tokens.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass, applied after temperature.")
    top_k: int = Field(50, ge=0, description="Keep the k most likely tokens (0 = off), applied after temperature.")
    repetition_penalty: float = Field(1.1, gt=0.0, description="Penalty on tokens already in prompt or completion.")
    stop: tuple[str, ...] = Field(
        SEED_STOP, description="Stop sequences; the completion ends before the first one that counts.")
    stop_after_definition: bool = Field(
        True, description="A stop sequence counts only after 'def create_ansatz' in the completion (so PEP 8 blank "
                          "lines and a bare opening fence do not end it); False: wherever it occurs (literal).")
    do_sample: bool = Field(True, description="Sample (True) or decode greedily at every temperature (False).")
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "float16", description="Weight dtype on CUDA (on CPU, 16-bit falls back to float32).")
    device: str = Field("auto", description="auto (CUDA when present, else CPU), cpu, cuda or cuda:N.")
    seed: int = Field(0, description="Default sampling seed when a request carries none.")
    merge_lora: bool = Field(
        True, description="Merge the LoRA into the base weights at load (transformers): same outputs up to "
                          "rounding, no adapter cost per token. Off to keep the adapter separate.")
    static_cache: bool = Field(
        True, description="transformers on CUDA: static KV cache with the decode step captured as a CUDA graph.")
    compile: bool = Field(
        True, description="transformers on CUDA with static_cache: torch.compile the decode step before capturing "
                          "it (about a minute per new batch shape; then ~1.3x faster).")
    max_batch_rows: int = Field(
        64, ge=1, description="Most rows (prompts x temperatures) in one model call; larger requests are split.")
    max_context_chars: int = Field(
        4000, ge=100, description="Longest CONTEXT block in the prompt; longer memory context is truncated.")
    max_hamiltonian_terms: int = Field(
        24, ge=1, description="Pauli terms shown in the prompt's HAMILTONIAN line; the rest are counted.")
    lora_rank: int | None = Field(
        None, ge=1, description="vLLM max_lora_rank; None reads r from the adapter's adapter_config.json.")
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0, description="vLLM: fraction of GPU memory to use.")
    max_model_len: int = Field(4096, ge=256, description="vLLM: longest prompt + completion, in tokens.")
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM: GPUs per model.")
    server_url: str = Field(
        "http://127.0.0.1:8000/v1", description="vllm-server: base URL of the OpenAI-compatible API.")
    server_model: str | None = Field(
        None, description="vllm-server: model name to request (the --lora-modules name for the adapter); None "
                          "uses the adapter's directory name, else the base model.")
    server_timeout_s: float = Field(600.0, gt=0, description="vllm-server: seconds to wait for one response.")
    server_concurrency: int = Field(16, ge=1, description="vllm-server: requests in flight at once.")

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("temperatures must list at least one temperature, e.g. [0.5, 0.7, 0.9]")
        bad = [t for t in value if not (0.0 <= t <= 5.0)]
        if bad:
            raise ValueError(f"temperatures must lie in [0, 5], got {bad}")
        return tuple(float(t) for t in value)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop sequences must be non-empty strings")
        return tuple(value)

    @model_validator(mode="after")
    def _adapter_needs_model_backend(self) -> GeneratorConfig:
        if self.adapter and self.generator == "procedural":
            raise ValueError("an adapter needs a model backend: set generator to transformers, vllm or vllm-server")
        return self

    def sampling_settings(self) -> dict:
        """The settings a batch records beside its candidates."""
        return {
            "temperatures": list(self.temperatures), "top_p": self.top_p, "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty, "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop), "stop_after_definition": self.stop_after_definition, "do_sample": self.do_sample,
        }
