"""Prompt building, code extraction and the generator backends (vLLM, transformers + peft, procedural).

``build_generator(config)`` is the one entry point the queue and the CLI use. Heavy backends are imported only
when chosen, so importing this package costs nothing (and the GPU benchmark can import ``decoding`` without qiskit).
"""

from __future__ import annotations


def build_generator(config=None):
    """The backend ``config.generator`` names, not yet loaded (models load lazily on the first ``generate``)."""
    from .config import GeneratorConfig

    config = config if config is not None else GeneratorConfig()
    if config.generator == "procedural":
        from .procedural import ProceduralGenerator

        return ProceduralGenerator(config)
    if config.generator == "transformers":
        from .hf_backend import TransformersGenerator

        return TransformersGenerator(config)
    if config.generator == "vllm":
        from .vllm_backend import VLLMGenerator

        return VLLMGenerator(config)
    if config.generator == "vllm-server":
        from .vllm_backend import VLLMServerGenerator

        return VLLMServerGenerator(config)
    raise ValueError(f"unknown generator '{config.generator}'")  # unreachable: GeneratorConfig validates it


__all__ = ["build_generator"]
