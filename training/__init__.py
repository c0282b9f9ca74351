"""Datasets from the store, SFT (QLoRA), GRPO with verifiable rewards, model evaluation and checkpoints."""
