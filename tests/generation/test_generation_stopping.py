"""Stop sequences count only after `def create_ansatz`: the rule, the final cut of a row, and the per-row stopping
criterion of the generate engine, with the tiny tokenizer (no model)."""

import pytest
import torch

from tests.generation.lessons import HEIS_CODE
from tests.tinymodel import SAMPLE_CODE, build_tokenizer
from workers.generation.config import SEED_STOP, GeneratorConfig
from workers.generation.decoding import StopAfterDefinition, finish_row
from workers.generation.extract import extract_code
from workers.generation.stopping import engine_stops, first_effective_stop, settle

PEP8_BARE = HEIS_CODE + "\n\nif __name__ == '__main__':\n    print(create_ansatz(4))\n"


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_a_pep8_completion_keeps_its_code_and_stops_at_the_first_blank_lines_after_the_function():
    assert "\n\n\n" in HEIS_CODE.split("def create_ansatz")[0]  # two blank lines before the def
    cut = first_effective_stop(PEP8_BARE, SEED_STOP)
    assert PEP8_BARE[:cut] == HEIS_CODE.rstrip("\n")
    assert extract_code(PEP8_BARE[:cut]).code == HEIS_CODE
    # literally applied, the same stop list cuts it right after the imports
    literal = first_effective_stop(PEP8_BARE, SEED_STOP, after_definition=False)
    assert PEP8_BARE[:literal] == HEIS_CODE.split("\n\n\n")[0]
    assert extract_code(PEP8_BARE[:literal]).code is None


def test_a_bare_opening_fence_does_not_end_the_completion_but_the_closing_fence_does():
    text = "```\n" + SAMPLE_CODE + "```\nThis ansatz is shallow.\n```\n"
    assert text[:first_effective_stop(text, SEED_STOP)] == "```\n" + SAMPLE_CODE
    assert first_effective_stop(text, SEED_STOP, after_definition=False) == 0


def test_before_the_definition_no_stop_sequence_counts():
    text = "Install it first:\n```bash\npip install qiskit\n```\n\n\n\nThen:\n```python\nimport numpy\n```\n"
    assert first_effective_stop(text, SEED_STOP) == -1
    assert first_effective_stop("", SEED_STOP) == -1
    # a stop right after the name is after the start of the definition
    assert first_effective_stop("def create_ansatz```\n", SEED_STOP) == len("def create_ansatz")
    assert first_effective_stop("x\n\n\ndef create_ansatz(n):\n    pass\n", ()) == -1


def test_vllm_gets_only_the_closing_fence_and_the_literal_rule_gets_every_stop():
    assert engine_stops(SEED_STOP) == ["\n```\n"]
    assert engine_stops(SEED_STOP, after_definition=False) == ["```\n", "\n\n\n"]
    assert engine_stops(("~~~\n", "\n```\n", "```\n", "END")) == ["\n~~~\n", "\n```\n"]


def test_settle_cuts_at_the_first_effective_stop_or_asks_to_continue_after_a_stop_that_does_not_count():
    fenced = "```python\n" + HEIS_CODE + "```\n"
    assert settle(fenced, "stop", SEED_STOP) == ("```python\n" + HEIS_CODE, "stop")
    assert settle("Here it is:\n```\n", "stop", SEED_STOP) is None  # a bare fence after prose: go on
    assert settle("```python\nimport x\n", "eos", SEED_STOP) == ("```python\nimport x\n", "eos")
    assert settle("```python\nimport x\n", "length", SEED_STOP) == ("```python\nimport x\n", "length")
    # a stop vLLM was not given ("\n\n\n") is applied afterwards
    assert settle(PEP8_BARE, "eos", SEED_STOP) == (HEIS_CODE.rstrip("\n"), "stop")
    # literal rule: vLLM left the stop out of the text and the completion is final as it is
    assert settle("Here it is:\n", "stop", SEED_STOP, after_definition=False) == ("Here it is:\n", "stop")


def test_finish_row_cuts_the_text_and_counts_tokens_up_to_the_one_completing_the_effective_stop(tok):
    completion = "```python\n" + HEIS_CODE + "```\nDone."
    ids = tok(completion, add_special_tokens=False)["input_ids"]
    row = finish_row(ids, tok, stop=SEED_STOP, eos_ids=[tok.eos_token_id])
    assert row.text == "```python\n" + HEIS_CODE and row.finish_reason == "stop"
    assert tok.decode(ids[:row.tokens]).endswith("```\n") and not tok.decode(ids[:row.tokens - 1]).endswith("```\n")
    literal = finish_row(ids, tok, stop=SEED_STOP, eos_ids=[tok.eos_token_id], after_definition=False)
    assert literal.text == "```python\n" + HEIS_CODE.split("\n\n\n")[0] and literal.tokens < row.tokens


def first_stopping_steps(tok, completions, *, after_definition=True, prompt=(7, 8, 9)):
    """Feed the criterion growing prefixes (after a fake prompt) as generate does; the step each row first stops."""
    rows = [tok(c, add_special_tokens=False)["input_ids"] for c in completions]
    width = max(map(len, rows))
    filler = tok("x", add_special_tokens=False)["input_ids"][0]
    ids = torch.tensor([list(prompt) + r + [filler] * (width - len(r)) for r in rows])
    criterion = StopAfterDefinition(tok, SEED_STOP, len(prompt), after_definition=after_definition)
    first = [None] * len(rows)
    for n in range(len(prompt) + 1, ids.shape[1] + 1):
        done = criterion(ids[:, :n], None)
        assert done.dtype == torch.bool and done.shape == (len(rows),)
        for b, flag in enumerate(done.tolist()):
            if flag and first[b] is None:
                first[b] = n - len(prompt)
    return rows, first


def expected_steps(tok, rows, *, after_definition=True):
    """Brute force: the shortest prefix whose text holds an effective stop sequence."""
    return [next((n for n in range(1, len(r) + 1)
                  if first_effective_stop(tok.decode(r[:n]), SEED_STOP, after_definition=after_definition) >= 0),
                 None) for r in rows]


def test_the_stopping_criterion_stops_each_row_exactly_at_its_own_first_effective_stop(tok):
    completions = ["```python\n" + HEIS_CODE + "```\nDone.",  # PEP 8: blank lines before the def
                   "```\n" + SAMPLE_CODE + "```\nDone.",  # bare opening fence
                   PEP8_BARE,  # no fences: stops at the blank lines after the function
                   "Sure.\n```\n\n\n\nNo code today.\n```\n"]  # never defines create_ansatz: never stops
    rows, first = first_stopping_steps(tok, completions)
    assert first == expected_steps(tok, rows)
    assert first[3] is None and len({f for f in first[:3]}) == 3
    assert tok.decode(rows[0][:first[0]]) == "```python\n" + HEIS_CODE + "```\n"
    _, literal = first_stopping_steps(tok, completions, after_definition=False)
    assert literal == expected_steps(tok, rows, after_definition=False)
    assert all(a < b for a, b in zip(literal[:3], first[:3]))


def test_the_config_switch_and_its_environment_variable_restore_the_literal_rule(monkeypatch):
    assert GeneratorConfig().stop_after_definition is True and GeneratorConfig().stop == SEED_STOP
    monkeypatch.setenv("QMIND_GEN_STOP_AFTER_DEFINITION", "false")
    config = GeneratorConfig()
    assert config.stop_after_definition is False
    assert config.sampling_settings()["stop_after_definition"] is False
