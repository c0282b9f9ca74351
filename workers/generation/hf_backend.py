"""The transformers (+ peft) backend: base model and LoRA adapter from local directories (or Hub ids).

The model is loaded once, lazily, on the first call. Every prompt x temperature of a call goes into one batched
decode (left padding, a per-row temperature and seed): on CUDA with ``static_cache`` the CUDA-graph engine of
:mod:`graph_decoder`, otherwise transformers' ``generate`` with :class:`decoding.RowSampler`. The LoRA is merged
into the base weights by default (``merge_lora``): the outputs are the same up to rounding and decoding pays
nothing for the adapter.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Sequence

from .base import Candidate, GenerationBatch, PromptRequest, candidate_seed
from .config import GeneratorConfig
from .errors import GenerationError
from .extract import extract_code
from .models import ModelSpec, UnknownModelError, resolve
from .prompts import SYSTEM_PROMPT, chat_text, render_prompt

_DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32"}


def check_adapter_dir(path: str) -> pathlib.Path:
    """The adapter directory, or a GenerationError saying what a LoRA adapter directory must contain."""
    adapter = pathlib.Path(path).expanduser()
    if not adapter.is_dir():
        raise GenerationError(f"adapter directory {adapter} does not exist; expected a directory written by "
                              f"peft's save_pretrained (adapter_config.json + adapter_model.safetensors)")
    config = adapter / "adapter_config.json"
    if not config.is_file():
        found = sorted(p.name for p in adapter.iterdir())[:10]
        raise GenerationError(f"{adapter} is not a LoRA adapter directory: no adapter_config.json (found {found}); "
                              f"expected the output of peft's save_pretrained")
    return adapter


def adapter_rank(path: str) -> int:
    """The LoRA rank ``r`` in an adapter's adapter_config.json (largest of rank_pattern, if any)."""
    config_path = check_adapter_dir(path) / "adapter_config.json"
    try:
        data = json.loads(config_path.read_text())
        ranks = [int(data["r"])] + [int(v) for v in (data.get("rank_pattern") or {}).values()]
    except (ValueError, KeyError, TypeError) as exc:
        raise GenerationError(f"{config_path} has no valid integer 'r' (the LoRA rank): {exc}") from exc
    return max(ranks)


def model_and_adapter(config: GeneratorConfig) -> tuple[str, ModelSpec | None, str | None]:
    """(model path, its model-table entry, adapter folder) of a generator's settings, each checked."""
    try:
        model_path, spec = resolve(config.model)
    except UnknownModelError as exc:
        raise GenerationError(str(exc)) from exc
    return model_path, spec, str(check_adapter_dir(config.adapter)) if config.adapter else None


class TransformersGenerator:
    """Generator protocol on transformers; ``load()`` happens on the first ``generate``."""

    name = "transformers"

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.model_path, self.spec, self.adapter_path = model_and_adapter(config)
        self.model = self.tokenizer = self._decoder = None
        self.device = None
        self.load_seconds = 0.0
        self.switch_seconds = 0.0
        """Seconds the last adapter switch took (``use_adapter``); 0 before any."""
        self.switches = 0

    # ---- loading ---------------------------------------------------------------------------------------------
    def _torch_dtype(self, torch, device):
        if device.type == "cpu" and self.config.dtype in ("float16", "bfloat16", "auto"):
            return torch.float32  # 16-bit matmuls on CPU are slow or missing
        return "auto" if self.config.dtype == "auto" else getattr(torch, _DTYPES[self.config.dtype])

    def load(self) -> None:
        """Load tokenizer, model and adapter (once)."""
        if self.model is not None:
            return
        start = time.perf_counter()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise GenerationError("the transformers backend needs torch and transformers: pip install "
                                  "'quantum-mind[train]'") from exc
        wanted = self.config.device
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise GenerationError(f"device '{self.config.device}' asked for, but CUDA is not available here; use "
                                  f"device=auto or cpu")
        self.device = torch.device(wanted)
        tokenizer_dir = self.adapter_path if self.adapter_path and (
            pathlib.Path(self.adapter_path) / "tokenizer_config.json").is_file() else self.model_path
        try:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
            model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self._torch_dtype(torch, self.device),
                                                         attn_implementation="sdpa")
        except (OSError, ValueError) as exc:
            raise GenerationError(f"could not load model '{self.model_path}': {exc}. Expected a local directory "
                                  f"written by save_pretrained, or a Hub id reachable from this host") from exc
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if self.adapter_path:
            try:
                from peft import PeftModel
            except ImportError as exc:
                raise GenerationError("loading a LoRA adapter needs peft: pip install peft") from exc
            try:
                model = PeftModel.from_pretrained(model, self.adapter_path)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise GenerationError(f"could not apply adapter {self.adapter_path} to {self.model_path}: {exc}. "
                                      f"Expected a LoRA trained on this base model") from exc
            if self.config.merge_lora:
                model = model.merge_and_unload()
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        if self.device.type == "cuda" and self.config.static_cache:
            from .graph_decoder import GraphDecoder

            self._decoder = GraphDecoder(self.model, tokenizer, compile=self.config.compile)
        self.load_seconds = time.perf_counter() - start

    def use_adapter(self, path: str | None) -> bool:
        """Generate with the adapter folder ``path`` (None: the base alone) from now on, without loading the base
        again: before the first load it is only remembered; afterwards the loaded model switches in place
        (:mod:`adapter_switch`: merged weights re-merge, a separate adapter is swapped). The tokenizer stays the
        one loaded first (adapters of one base share it). Returns whether anything changed."""
        new = str(check_adapter_dir(path)) if path else None
        if new == self.adapter_path:
            return False
        if self.model is None:
            self.adapter_path = new
            return True
        from .adapter_switch import switch_merged, switch_separate

        start = time.perf_counter()
        self.switches += 1
        if self.config.merge_lora:
            self.model = switch_merged(self.model, self.adapter_path, new).eval()
        else:
            before = self.model
            self.model = switch_separate(self.model, self.adapter_path, new, name=f"v{self.switches}").eval()
            if self.model is not before and self._decoder is not None:  # LoRA layers came or went: capture again
                from .graph_decoder import GraphDecoder

                self._decoder = GraphDecoder(self.model, self.tokenizer, compile=self.config.compile)
        self.adapter_path = new
        self.switch_seconds = time.perf_counter() - start
        return True

    # ---- generation ------------------------------------------------------------------------------------------
    def _decode(self, texts, spec):
        from .decoding import eos_token_ids, generate_rows

        extra = self.spec.end_of_turn if self.spec else ()
        eos = eos_token_ids(self.model, self.tokenizer, extra)
        if self._decoder is not None:
            return self._decoder.decode(texts, spec, eos_ids=eos)
        return generate_rows(self.model, self.tokenizer, texts, spec, eos_ids=eos)

    def generate(self, requests: Sequence[PromptRequest]) -> list[GenerationBatch]:
        from .decoding import SamplingSpec

        self.load()
        cfg = self.config
        prompts = [render_prompt(r.goal, r.memory_context, max_context_chars=cfg.max_context_chars,
                                 max_terms=cfg.max_hamiltonian_terms) for r in requests]
        system_role = self.spec.system_role if self.spec else True
        texts = [chat_text(self.tokenizer, p, system_role=system_role) for p in prompts]
        rows = [(i, j, t, candidate_seed(r.seed, j))
                for i, r in enumerate(requests) for j, t in enumerate(cfg.temperatures)]
        outputs, seconds, engine = [], [0.0] * len(requests), ""
        prompt_tokens = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        for start in range(0, len(rows), cfg.max_batch_rows):
            chunk = rows[start:start + cfg.max_batch_rows]
            spec = SamplingSpec(temperatures=[r[2] for r in chunk], seeds=[r[3] for r in chunk], top_k=cfg.top_k,
                                top_p=cfg.top_p, repetition_penalty=cfg.repetition_penalty,
                                max_new_tokens=cfg.max_new_tokens, stop=cfg.stop,
                                stop_after_definition=cfg.stop_after_definition, do_sample=cfg.do_sample)
            try:
                decoded, stats = self._decode([texts[r[0]] for r in chunk], spec)
            except (RuntimeError, ValueError) as exc:
                raise GenerationError(f"generation failed on {self.device} ({self.model_path}): {exc}") from exc
            engine = stats.engine
            outputs.extend(decoded)
            for r in chunk:
                seconds[r[0]] += stats.seconds / len(chunk)
        batches = []
        for i, request in enumerate(requests):
            candidates = []
            for (ri, j, temperature, seed), out in zip(rows, outputs):
                if ri != i:
                    continue
                found = extract_code(out.text)
                candidates.append(Candidate(temperature=temperature, raw=out.text, code=found.code, tokens=out.tokens,
                                            extraction_error=found.error, seed=seed, finish_reason=out.finish_reason))
            batches.append(GenerationBatch(
                goal_name=request.goal.name, system_prompt=SYSTEM_PROMPT, prompt=prompts[i],
                memory_context=request.memory_context, candidates=tuple(candidates), generator=self.name,
                model=self.model_path, adapter=self.adapter_path,
                settings={**cfg.sampling_settings(), "seed": request.seed, "engine": engine,
                          "merge_lora": cfg.merge_lora, "device": str(self.device),
                          "load_seconds": round(self.load_seconds, 3), "adapter_switches": self.switches},
                prompt_tokens=prompt_tokens[i], completion_tokens=sum(c.tokens for c in candidates),
                seconds=seconds[i],
            ))
        return batches

