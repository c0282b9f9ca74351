"""``qmind train base``: a small Qwen2-architecture code model trained from nothing on the project's corpus.

The corpus (``training.base_corpus``) pairs the seed's prompt, rendered for a training goal through the chat
template, with a program answering it. A byte-level BPE tokenizer is learned on the corpus, a randomly initialised
``Qwen2ForCausalLM`` of the chosen size (``training.base_config.SIZES``) learns the completions (loss on the
assistant turn only), and the result is a normal transformers checkpoint (config, weights, tokenizer with its chat
template, generation config) that every command taking ``--model`` accepts, plus ``training.yaml`` saying what it
learned from, what was held out and how training went.

Training stops at ``max_steps`` or when the whole run has taken ``time_budget_s``, whichever comes first; the
learning-rate schedule (5 % linear warm-up, cosine to 10 %) follows whichever is nearer, so a run cut by time
still ends at a low rate.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import pathlib
import random
import time

from .base_config import EVAL_GOALS, HELD_OUT_FAMILIES, HELD_OUT_QUBITS, BaseSettings, train_goal_names
from .base_corpus import Example, chat_pair, describe, procedural_examples, store_examples
from .checkpoints import today
from .errors import TrainingError
from .tokenizer import train_tokenizer

log = logging.getLogger(__name__)
RECORD = "training.yaml"


@dataclasses.dataclass(frozen=True)
class BaseResult:
    path: str
    record: dict


def build_corpus(settings: BaseSettings, *, engine=None) -> list[Example]:
    names = train_goal_names()
    examples = procedural_examples(names, settings.programs_per_goal, seed=settings.seed, workers=settings.workers)
    if engine is not None and settings.store_candidates > 0:
        examples += store_examples(engine, names, settings.store_candidates)
    return examples


def write_corpus(examples: list[Example], path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(dataclasses.asdict(e)) + "\n" for e in examples)


def read_corpus(path) -> list[Example]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [Example(**json.loads(line)) for line in fh if line.strip()]
    except (OSError, TypeError, ValueError) as exc:
        raise TrainingError(f"cannot read the corpus {path}: {exc}; expected a file written by --save-corpus") from exc


def _model(tokenizer, settings: BaseSettings):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    shape = settings.shape()
    torch.manual_seed(settings.seed)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")}
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers, num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=tokenizer.pad_token_id,
        do_sample=True, temperature=0.7, top_p=0.9, top_k=50, repetition_penalty=1.1,  # the seed's inference
    )
    return model


def _encode(tokenizer, examples: list[Example], max_length: int) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per example that fits in ``max_length``."""
    out = []
    for e in examples:
        prompt, completion = chat_pair(tokenizer, e)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if len(p) + len(c) <= max_length:
            out.append((p + c, len(p)))
    return out


def _batches(encoded, batch_size: int, rng: random.Random):
    """Endless batches, each of examples of similar length (less padding): every epoch shuffles the examples, sorts
    pools of 16 batches' worth by length, cuts them into batches and shuffles the batches."""
    pool = batch_size * 16
    while True:
        order = rng.sample(range(len(encoded)), len(encoded))
        batches = []
        for i in range(0, len(order), pool):
            chunk = sorted(order[i : i + pool], key=lambda j: len(encoded[j][0]))
            batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        for batch in batches:
            yield [encoded[j] for j in batch]


def _batch(rows, pad_id: int, device):
    """Right-padded ids and labels (-100 but on the completion). No attention mask is needed: attention is causal,
    so no real token sees the padding after it, and the padding's outputs carry no label."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (seq, plen) in enumerate(rows):
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, plen : len(seq)] = torch.tensor(seq[plen:])
    return ids.to(device), labels.to(device)


def _loss(model, ids, labels):
    """The mean next-token cross-entropy on the completion; the vocabulary head runs on those positions only."""
    import torch

    hidden = model.model(input_ids=ids).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    keep = target != -100
    return torch.nn.functional.cross_entropy(model.lm_head(hidden[keep]).float(), target[keep])


def _rate(settings: BaseSettings, step: int, elapsed: float, budget: float) -> float:
    progress = max(step / settings.max_steps, elapsed / budget if budget > 0 else 0.0)
    if progress < 0.05:
        return settings.learning_rate * max(progress / 0.05, 0.01)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - 0.05) / 0.95)))
    return settings.learning_rate * (0.1 + 0.9 * cosine)


class _Threads:
    """CPU threads for the loop. ``--threads 0`` on CPU: the first steps alternate one thread and every core, timed
    per token, and the faster is kept. On a shared, loaded machine one thread is often several times faster than
    two (measured here: 0.2-0.27 against 0.4-0.96 ms per token at load 4-5 on 2 cores)."""

    def __init__(self, threads: int, device: str):
        import torch

        self.cores = torch.get_num_threads()
        self.trials = [1, self.cores] * 3 if device == "cpu" and not threads and self.cores > 1 else []
        self.times: dict[int, list[float]] = {}
        self.chosen = threads or (self.cores if device == "cpu" else None)
        if device == "cpu" and threads:
            torch.set_num_threads(threads)

    def before(self, step: int) -> None:
        import torch

        if step < len(self.trials):
            torch.set_num_threads(self.trials[step])

    def after(self, step: int, seconds: float, tokens: int) -> None:
        import torch

        if step >= len(self.trials):
            return
        self.times.setdefault(self.trials[step], []).append(seconds / tokens)
        if step == len(self.trials) - 1:
            self.chosen = min(self.times, key=lambda t: sorted(self.times[t])[len(self.times[t]) // 2])
            torch.set_num_threads(self.chosen)
            log.info("threads: %d (ms per token by threads: %s)", self.chosen,
                     {t: [round(v * 1e3, 3) for v in vs] for t, vs in self.times.items()})

    def record(self) -> dict:
        return {"threads": self.chosen, "thread_trials_ms_per_token": {
            t: [round(v * 1e3, 3) for v in vs] for t, vs in self.times.items()}}


def _train(model, encoded, settings: BaseSettings, pad_id: int, deadline: float) -> dict:
    """The optimisation loop; returns the loss history, the step count and the threads used."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, betas=(0.9, 0.95),
                                  weight_decay=settings.weight_decay)
    batches = _batches(encoded, settings.batch_size, random.Random(settings.seed))
    threads = _Threads(settings.threads, device)
    start, history, step, window, tokens = time.monotonic(), [], 0, [], 0
    budget = max(deadline - start, 1.0)
    while step < settings.max_steps and time.monotonic() < deadline:
        ids, labels = _batch(next(batches), pad_id, device)
        threads.before(step)
        began = time.monotonic()
        lr = _rate(settings, step, began - start, budget)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = _loss(model, ids, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        window.append(float(loss.detach()))
        threads.after(step, time.monotonic() - began, ids.numel())
        step, tokens = step + 1, tokens + ids.numel()
        if step == 1 or step % 25 == 0:  # the mean loss of the steps since the last line
            history.append({"step": step, "loss": round(sum(window) / len(window), 4), "lr": lr,
                            "seconds": round(time.monotonic() - start, 1)})
            log.info("step %d loss %.4f lr %.2e (%.0f s)", step, history[-1]["loss"], lr, time.monotonic() - start)
            window = []
    if window:  # the steps after the last line
        history.append({"step": step, "loss": round(sum(window) / len(window), 4), "lr": lr,
                        "seconds": round(time.monotonic() - start, 1)})
    model.eval().to("cpu")
    seconds = time.monotonic() - start
    return {"steps": step, "history": history, "device": device, "seconds": round(seconds, 1),
            "tokens_per_second": round(tokens / max(seconds, 1e-9)), **threads.record()}


def train_base(out, settings: BaseSettings | None = None, *, engine=None, corpus=None,
               save_corpus=None) -> BaseResult:
    """Build (or read) the corpus, learn the tokenizer, train the model, write the checkpoint to ``out``."""
    import torch

    started = time.monotonic()
    settings = settings or BaseSettings()
    settings.shape()  # a bad size fails before any work
    out = pathlib.Path(out)
    if out.exists() and any(out.iterdir()):
        raise TrainingError(f"{out} exists and is not empty; give a new --out folder")
    examples = read_corpus(corpus) if corpus else build_corpus(settings, engine=engine)
    if not examples:
        raise TrainingError("the corpus is empty: no training goal gave a program")
    if save_corpus:
        write_corpus(examples, save_corpus)
    log.info("corpus: %d examples (%.0f s)", len(examples), time.monotonic() - started)
    texts = [t for e in examples for t in (e.prompt, e.completion)]
    tokenizer = train_tokenizer(texts, settings.shape().vocab_size)
    encoded = _encode(tokenizer, examples, settings.max_length)
    if not encoded:
        raise TrainingError(f"no example fits in --max-length {settings.max_length} tokens")
    model = _model(tokenizer, settings)
    threads = torch.get_num_threads()
    run = _train(model, encoded, settings, tokenizer.pad_token_id, started + settings.time_budget_s)
    torch.set_num_threads(threads)
    partial = out.with_name(f".{out.name}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    record = {
        "kind": "qmind-base", "date": today(), "size": settings.size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "settings": settings.to_dict(), "corpus": {**describe(examples), "encoded": len(encoded),
                                                   "source_file": str(corpus) if corpus else None},
        "held_out": {"families": list(HELD_OUT_FAMILIES), "num_qubits": HELD_OUT_QUBITS,
                     "eval_goals": list(EVAL_GOALS)},
        "train_goals": train_goal_names(), **run,
        "first_loss": run["history"][0]["loss"] if run["history"] else None,
        "final_loss": run["history"][-1]["loss"] if run["history"] else None,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    import yaml

    (partial / RECORD).write_text(yaml.safe_dump(record, sort_keys=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(out)
    return BaseResult(str(out.resolve()), record)
