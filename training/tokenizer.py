"""A byte-level BPE tokenizer trained on a corpus, in the form Qwen2 checkpoints ship theirs.

Qwen2's own normaliser (NFC) and pre-tokeniser (its split regex, then byte-level), wrapped in transformers'
``Qwen2Tokenizer`` (the class ``AutoTokenizer`` picks for a qwen2 checkpoint, so a saved and reloaded copy
tokenizes identically), Qwen's special tokens and a ChatML chat template. Used by ``qmind train base`` and by
the tests' tiny models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
END_OF_TURN = "<|im_end|>"

# Qwen2.5's template reduced to what matters here: ChatML turns and a default system turn when none is given.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, model_max_length: int = 4096):
    """A ``Qwen2Tokenizer`` whose BPE merges were learned from ``texts`` (``vocab_size`` entries, the 256 byte
    symbols and the three special tokens included)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer)
    model = json.loads(core.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, eos_token=END_OF_TURN,
                               pad_token="<|endoftext|>", unk_token=None, chat_template=CHAT_TEMPLATE,
                               padding_side="left", model_max_length=model_max_length)
    tokenizer.add_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS], special_tokens=True)
    return tokenizer
