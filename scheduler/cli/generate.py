"""``qmind generate``: render the prompt for a goal and print one batch of candidates (3 temperatures)."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.panel import Panel
from rich.syntax import Syntax

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal

from . import app
from .common import console, print_json, usage_error


def _config(as_json: bool, **overrides):
    from workers.generation.config import GENERATORS, GeneratorConfig

    try:
        return GeneratorConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        usage_error(f"invalid generator settings: {problems}. Generators: {', '.join(GENERATORS)}", as_json=as_json)


@app.command("generate")
def generate(
    goal: str = typer.Option(..., "--goal", "-g", help="Goal name (tfim-8, h2, ...) or a goal YAML file."),
    generator: str = typer.Option(None, "--generator", help="procedural, transformers, vllm or vllm-server "
                                                            "(default: QMIND_GEN_GENERATOR, else procedural)."),
    model: str = typer.Option(None, "--model", help="Model-table name, Hugging Face id or local directory."),
    adapter: str = typer.Option(None, "--adapter", help="LoRA adapter directory."),
    memory_context: str = typer.Option("", "--memory-context", help="Text for the prompt's CONTEXT block."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed of the request."),
    temperatures: str = typer.Option(None, "--temperatures", help="Comma-separated, e.g. 0.5,0.7,0.9."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Completion length limit."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Print the prompt and the candidates of one generation batch for GOAL."""
    from workers.generation import build_generator
    from workers.generation.base import PromptRequest
    from workers.generation.errors import GenerationError

    try:
        goal_obj = get_goal(goal)
    except GoalError as exc:
        usage_error(str(exc), as_json=as_json)
    temps = None
    if temperatures:
        try:
            temps = tuple(float(t) for t in temperatures.split(",") if t.strip())
        except ValueError:
            usage_error(f"--temperatures must be comma-separated numbers such as 0.5,0.7,0.9, got {temperatures!r}",
                        as_json=as_json)
    config = _config(as_json, generator=generator, model=model, adapter=adapter, temperatures=temps,
                     max_new_tokens=max_new_tokens, seed=seed)
    try:
        gen = build_generator(config)
        batch = gen.generate([PromptRequest(goal=goal_obj, memory_context=memory_context, seed=seed)])[0]
    except GenerationError as exc:
        usage_error(str(exc), as_json=as_json)
    if as_json:
        print_json({
            "goal": batch.goal_name, "generator": batch.generator, "model": batch.model, "adapter": batch.adapter,
            "seed": seed, "system_prompt": batch.system_prompt, "prompt": batch.prompt,
            "candidates": [{"temperature": c.temperature, "code": c.code, "raw": c.raw, "tokens": c.tokens,
                            "seed": c.seed, "finish_reason": c.finish_reason,
                            "extraction_error": c.extraction_error} for c in batch.candidates],
            "settings": batch.settings, "prompt_tokens": batch.prompt_tokens,
            "completion_tokens": batch.completion_tokens, "seconds": batch.seconds,
        })
        return
    console.print(Panel(batch.prompt, title=f"prompt for {batch.goal_name}", subtitle=batch.generator,
                        expand=False), highlight=False)
    for c in batch.candidates:
        title = f"T = {c.temperature:g} · {c.tokens} tokens · {c.finish_reason or '-'} · seed {c.seed}"
        if c.code is not None:
            console.print(Panel(Syntax(c.code, "python", line_numbers=False, word_wrap=True), title=title))
        else:
            console.print(Panel(c.raw or "(empty)", title=title, subtitle=f"no code: {c.extraction_error}",
                                border_style="red"), highlight=False)
