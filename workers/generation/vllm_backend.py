"""vLLM backends: the in-process engine (``vllm.LLM``) and a client for ``vllm serve``'s OpenAI-compatible API.

In-process: ``LLM(model, enable_lora=True, max_lora_rank=<the adapter's r, rounded up to a rank vLLM supports>,
enable_prefix_caching=True)``; every (prompt, temperature) pair gets its own ``SamplingParams`` (temperature, seed)
and all of them go into ONE ``generate`` call with one ``LoRARequest(name, int_id, path)``. vLLM does not check that
``int_id`` is unique per adapter, so it comes from configuration (the model-version id in the store) or from a
stable hash of the adapter's resolved path. vLLM's sampler applies penalties, then temperature, then top-k/top-p.

Server: ``vllm serve BASE --enable-lora --lora-modules NAME=ADAPTER_DIR --max-lora-rank R``; each (prompt,
temperature) pair is one ``POST /v1/chat/completions`` with ``model=NAME`` (the server applies the model's chat
template), sent concurrently with plain urllib. vLLM accepts ``top_k``, ``repetition_penalty`` and ``seed`` there.

Stop sequences: vLLM's ``stop`` applies unconditionally, but a stop sequence should count only after ``def
create_ansatz`` (:mod:`stopping`). So vLLM gets only the stops that close a fenced block, anchored to a line start
("\n```\n", rare before the code; :func:`stopping.engine_stops`), with ``include_stop_str_in_output``; the returned
text is then cut before its first effective stop (:func:`stopping.settle`: this also applies "\n\n\n" after the
function). When vLLM stopped at a fence that does not count yet (a block before the code, a bare fence after prose),
the completion is continued from where it stopped, with the rest of ``max_new_tokens`` and a seed derived from the
row's (:func:`continuation_seed`), at most :data:`MAX_CONTINUATIONS` times: in-process with the prompt text plus the
completion so far, on the server as a final assistant message with ``continue_final_message``. The returned text
is exactly what the model conditioned on; token counts add up every round.

vllm is imported only when the in-process backend loads (it is never installed on CPU hosts).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import pathlib
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from .base import Candidate, GenerationBatch, PromptRequest, candidate_seed
from .config import GeneratorConfig
from .errors import GenerationError
from .extract import extract_code
from .hf_backend import adapter_rank, check_adapter_dir, model_and_adapter
from .models import UnknownModelError, resolve
from .prompts import SYSTEM_PROMPT, chat_messages, chat_text, render_prompt
from .stopping import engine_stops, settle

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
MAX_CONTINUATIONS = 4
"""Most times one row's completion is continued after a stop string that did not count yet."""


def lora_int_id(adapter_path: str, adapter_id: int | None = None) -> int:
    """The adapter's integer id for LoRARequest: ``adapter_id`` when given, else a stable hash of the path (>= 1)."""
    if adapter_id is not None:
        if adapter_id < 1:
            raise GenerationError(f"adapter_id must be a positive integer (vLLM's lora_int_id), got {adapter_id}")
        return int(adapter_id)
    resolved = str(pathlib.Path(adapter_path).expanduser().resolve())
    return int.from_bytes(hashlib.sha256(resolved.encode()).digest()[:4], "big") % (2**31 - 2) + 1


def max_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts for ``max_lora_rank`` that holds an adapter of rank ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise GenerationError(f"LoRA rank {rank} exceeds the largest rank vLLM serves ({VLLM_LORA_RANKS[-1]})")


def sampling_kwargs(config: GeneratorConfig, temperature: float, seed: int, *, max_tokens: int | None = None,
                    ) -> dict:
    """Keyword arguments of one ``vllm.SamplingParams`` (also the sampling fields of a server request)."""
    kwargs = {
        "n": 1, "temperature": float(temperature) if config.do_sample else 0.0, "top_p": config.top_p,
        "top_k": config.top_k if config.top_k > 0 else -1, "repetition_penalty": config.repetition_penalty,
        "max_tokens": int(max_tokens or config.max_new_tokens),
        "stop": engine_stops(config.stop, after_definition=config.stop_after_definition), "seed": int(seed),
    }
    if config.stop_after_definition:
        kwargs["include_stop_str_in_output"] = True  # settle() must see where vLLM stopped
    return kwargs


def continuation_seed(seed: int, round_: int) -> int:
    """The seed of a row's ``round_``-th request: its own seed first, then one derived from it per continuation."""
    if round_ == 0:
        return int(seed)
    digest = hashlib.sha256(f"qmind-continuation:{int(seed)}:{int(round_)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclasses.dataclass
class RowProgress:
    """One row's completion across vLLM requests (a continuation after a stop string that did not count yet)."""

    temperature: float
    seed: int
    text: str = ""
    tokens: int = 0
    rounds: int = 0
    result: tuple[str, int, str] | None = None
    """(text, tokens, finish reason) once the row is finished."""

    def add(self, text: str, tokens: int, reason: str, config: GeneratorConfig) -> None:
        """Append one request's output; finish the row unless it stopped at a stop string that does not count yet
        and tokens and rounds are left."""
        self.text, self.tokens, self.rounds = self.text + text, self.tokens + int(tokens), self.rounds + 1
        settled = settle(self.text, reason, config.stop, after_definition=config.stop_after_definition)
        if settled is None and (self.tokens >= config.max_new_tokens or self.rounds > MAX_CONTINUATIONS):
            settled = (self.text, "length")
        if settled is not None:
            self.result = (settled[0], self.tokens, settled[1])

    def sampling(self, config: GeneratorConfig) -> dict:
        """Sampling fields of this row's next request (the rest of max_new_tokens, this round's seed)."""
        return sampling_kwargs(config, self.temperature, continuation_seed(self.seed, self.rounds),
                               max_tokens=config.max_new_tokens - self.tokens)


def plan_rows(requests: Sequence[PromptRequest], config: GeneratorConfig) -> list[tuple[int, float, int]]:
    """(request index, temperature, candidate seed) for every row, in order."""
    return [(i, t, candidate_seed(r.seed, j))
            for i, r in enumerate(requests) for j, t in enumerate(config.temperatures)]


def render_prompts(requests: Sequence[PromptRequest], config: GeneratorConfig) -> list[str]:
    return [render_prompt(r.goal, r.memory_context, max_context_chars=config.max_context_chars,
                          max_terms=config.max_hamiltonian_terms) for r in requests]


def server_model_name(config: GeneratorConfig) -> str:
    """The ``model`` field of server requests: configured, else the adapter directory's name, else the base id."""
    if config.server_model:
        return config.server_model
    if config.adapter:
        return pathlib.Path(config.adapter).expanduser().resolve().name
    try:
        return resolve(config.model)[0]
    except UnknownModelError as exc:
        raise GenerationError(str(exc)) from exc


def server_payloads(requests: Sequence[PromptRequest], config: GeneratorConfig, *, system_role: bool = True,
                    ) -> list[dict]:
    """One ``/v1/chat/completions`` body per (prompt, temperature) row."""
    prompts = render_prompts(requests, config)
    model = server_model_name(config)
    return [{"model": model, "messages": chat_messages(prompts[i], system_role=system_role),
             **sampling_kwargs(config, t, seed)} for i, t, seed in plan_rows(requests, config)]


def continuation_payload(payload: dict, row: RowProgress, config: GeneratorConfig) -> dict:
    """The body of a row's next request: ``payload`` itself first; then the completion so far as a final assistant
    message that the server continues (vLLM's ``continue_final_message``), with the rest of the tokens. Trailing
    whitespace is trimmed from ``row.text`` first (some chat templates trim it; the completion must stay exactly
    the text the model continued)."""
    if row.rounds == 0:
        return payload
    row.text = row.text.rstrip()
    return {**payload, "messages": [*payload["messages"], {"role": "assistant", "content": row.text}],
            "add_generation_prompt": False, "continue_final_message": True, **row.sampling(config)}


def parse_server_response(body: dict) -> tuple[str, int, str]:
    """(text, completion tokens, finish reason) from a chat-completions response body."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise GenerationError(f"unexpected response from the vLLM server (no choices[0].message.content): "
                              f"{str(body)[:300]}") from exc
    tokens = int((body.get("usage") or {}).get("completion_tokens") or 0)
    reason = choice.get("finish_reason") or "stop"
    if reason == "stop" and choice.get("stop_reason") is None:
        reason = "eos"  # vLLM: stop_reason None means the end-of-sequence token, a string means a stop sequence
    return text, tokens, reason


def _batches(requests, config, prompts, rows, outputs, *, generator, model, adapter, seconds, extra):
    batches = []
    for i, request in enumerate(requests):
        candidates = []
        for (ri, temperature, seed), (text, tokens, reason) in zip(rows, outputs):
            if ri == i:
                found = extract_code(text)
                candidates.append(Candidate(temperature=temperature, raw=text, code=found.code, tokens=tokens,
                                            extraction_error=found.error, seed=seed, finish_reason=reason))
        batches.append(GenerationBatch(
            goal_name=request.goal.name, system_prompt=SYSTEM_PROMPT, prompt=prompts[i],
            memory_context=request.memory_context, candidates=tuple(candidates), generator=generator, model=model,
            adapter=adapter, settings={**config.sampling_settings(), "seed": request.seed, **extra},
            completion_tokens=sum(c.tokens for c in candidates), seconds=seconds / max(1, len(requests)),
        ))
    return batches


class VLLMGenerator:
    """vLLM in-process: the engine is built once, lazily; each call is one ``LLM.generate``."""

    name = "vllm"

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.model_path, self.spec, self.adapter_path = model_and_adapter(config)
        self.llm = None
        self.lora_request = None
        self._lora_enabled = False

    def load(self) -> None:
        if self.llm is not None:
            return
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise GenerationError("the vllm backend needs vllm on a CUDA host: pip install 'quantum-mind[gpu]'; "
                                  "use generator=transformers or procedural elsewhere") from exc
        cfg = self.config
        kwargs = {"model": self.model_path, "dtype": "auto" if cfg.dtype == "auto" else cfg.dtype,
                  "enable_prefix_caching": True, "gpu_memory_utilization": cfg.gpu_memory_utilization,
                  "max_model_len": cfg.max_model_len, "tensor_parallel_size": cfg.tensor_parallel_size,
                  "seed": cfg.seed}
        if self.adapter_path:
            rank = cfg.lora_rank or adapter_rank(self.adapter_path)
            kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank(rank), max_loras=1)
            self._lora_enabled = True
            self.lora_request = LoRARequest(pathlib.Path(self.adapter_path).name,
                                            lora_int_id(self.adapter_path, cfg.adapter_id), self.adapter_path)
        try:
            self.llm = LLM(**kwargs)
        except Exception as exc:  # vLLM raises many types while building an engine
            raise GenerationError(f"vLLM could not load {self.model_path}: {exc}") from exc

    def use_adapter(self, path: str | None) -> bool:
        """Serve the adapter folder ``path`` (None: the base) from now on. vLLM keeps adapters beside the base and
        applies one per request, so a switch is a new LoRARequest (vLLM loads its weights on first use); an engine
        built without LoRA cannot take one (restart the worker with an adapter). Returns whether anything changed."""
        new = str(check_adapter_dir(path)) if path else None
        if new == self.adapter_path:
            return False
        if self.llm is not None and new is not None:
            if not self._lora_enabled:
                raise GenerationError("this vLLM engine was built without LoRA; restart the worker with an adapter "
                                      "(or a task naming one first) to switch adapters")
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest(pathlib.Path(new).name, lora_int_id(new), new)
        elif self.llm is not None:
            self.lora_request = None
        self.adapter_path = new
        return True

    def generate(self, requests: Sequence[PromptRequest]) -> list[GenerationBatch]:
        self.load()
        from vllm import SamplingParams

        cfg = self.config
        prompts = render_prompts(requests, cfg)
        tokenizer = self.llm.get_tokenizer()
        system_role = self.spec.system_role if self.spec else True
        texts = [chat_text(tokenizer, p, system_role=system_role) for p in prompts]
        rows = plan_rows(requests, cfg)
        progress = [RowProgress(t, seed) for _, t, seed in rows]
        pending = list(range(len(rows)))
        start = time.perf_counter()
        while pending:  # one generate call; another only for rows stopped at a fence that does not count yet
            params = [SamplingParams(**progress[k].sampling(cfg)) for k in pending]
            results = self.llm.generate([texts[rows[k][0]] + progress[k].text for k in pending], params,
                                        lora_request=self.lora_request, use_tqdm=False)
            for k, result in zip(pending, results):
                out = result.outputs[0]
                reason = out.finish_reason or "stop"
                if reason == "stop" and not isinstance(out.stop_reason, str):
                    reason = "eos"
                progress[k].add(out.text, len(out.token_ids), reason, cfg)
            pending = [k for k in pending if progress[k].result is None]
        seconds = time.perf_counter() - start
        outputs = [p.result for p in progress]
        extra = {"lora_int_id": self.lora_request.lora_int_id if self.lora_request else None,
                 "rounds": max((p.rounds for p in progress), default=0)}
        return _batches(requests, cfg, prompts, rows, outputs, generator=self.name, model=self.model_path,
                        adapter=self.adapter_path, seconds=seconds, extra=extra)


class VLLMServerGenerator:
    """A client of ``vllm serve`` (OpenAI-compatible chat completions)."""

    name = "vllm-server"

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.url = config.server_url.rstrip("/") + "/chat/completions"

    def _post(self, payload: dict) -> tuple[str, int, str]:
        data = json.dumps(payload).encode()
        req = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.config.server_timeout_s) as resp:
                body = json.loads(resp.read().decode())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise GenerationError(f"vLLM server at {self.url} answered HTTP {exc.code}: {detail}. Is model "
                                  f"'{payload['model']}' among its --lora-modules or its served model?") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise GenerationError(f"could not reach a vLLM server at {self.url}: {exc}. Start one with `vllm serve "
                                  f"BASE --enable-lora --lora-modules NAME=ADAPTER_DIR` and set "
                                  f"QMIND_GEN_SERVER_URL") from exc
        except ValueError as exc:
            raise GenerationError(f"vLLM server at {self.url} sent a body that is not JSON: {exc}") from exc
        return parse_server_response(body)

    def _complete(self, payload: dict) -> tuple[str, int, str]:
        """One row: its request, and continuations while it stopped at a fence that does not count yet."""
        row = RowProgress(payload["temperature"], payload["seed"])
        while row.result is None:
            row.add(*self._post(continuation_payload(payload, row, self.config)), self.config)
        return row.result

    def generate(self, requests: Sequence[PromptRequest]) -> list[GenerationBatch]:
        cfg = self.config
        payloads = server_payloads(requests, cfg)
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=cfg.server_concurrency) as pool:
            outputs = list(pool.map(self._complete, payloads))
        seconds = time.perf_counter() - start
        return _batches(requests, cfg, render_prompts(requests, cfg), plan_rows(requests, cfg), outputs,
                        generator=self.name, model=payloads[0]["model"] if payloads else None, adapter=cfg.adapter,
                        seconds=seconds, extra={"server_url": cfg.server_url})
