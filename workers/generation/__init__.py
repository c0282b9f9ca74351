"""Prompt building, code extraction and the generator backends (vLLM, transformers + peft, procedural)."""
