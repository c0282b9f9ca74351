"""The prompt: the seed document's texts, filled from a goal, with a bounded CONTEXT block."""

import re

import pytest
from seeddoc import ORIGINAL, SEED

from workers.evaluation.goals import get_goal
from workers.generation.prompts import (
    EMPTY_CONTEXT,
    SYSTEM_PROMPT,
    USER_TEMPLATE,
    bound_context,
    chat_messages,
    render_prompt,
)

# The tfim-4 goal's fields, written out here (the template is the seed document's, not the code's copy).
TFIM4_FIELDS = {
    "hamiltonian_description": "-1 Z0 Z1 - 1 Z1 Z2 - 1 Z2 Z3 - 1 Z0 Z3 - 1 X0 - 1 X1 - 1 X2 - 1 X3",
    "num_qubits": 4,
    "max_depth": 50,
    "allowed_gates": "rx, ry, rz, h, x, cx, cz, rzz",
    "memory_context": "None yet.",
}


def _seed_block(heading: str) -> str:
    text = SEED.read_text()
    match = re.search(rf"### {re.escape(heading)}\n\n```\n(.*?)\n```", text, re.DOTALL)
    assert match, f"no fenced block under '### {heading}' in {SEED}"
    return match.group(1)


def test_the_rendered_tfim4_prompt_is_the_seed_template_filled_in_word_for_word():
    goal = get_goal("tfim-4")  # the description is the goal's own text; the other fields are literal here
    assert "TFIM" in goal.description and "4 sites" in goal.description
    expected = _seed_block("User Prompt Template").format(problem_description=goal.description, **TFIM4_FIELDS)
    assert render_prompt(goal, "") == expected


def test_system_prompt_and_user_template_are_copied_verbatim_from_the_seed_document():
    assert SYSTEM_PROMPT == _seed_block("System Prompt")
    assert USER_TEMPLATE == _seed_block("User Prompt Template")


def test_a_memory_context_fills_the_context_block_verbatim():
    context = "Best so far: HVA with 2 layers, error 0.012.\nFailed: depth 61 > 50."
    prompt = render_prompt(get_goal("xy-6"), context)
    assert f"CONTEXT:\n{context}\n\nREQUIREMENTS:" in prompt
    assert "- Number of qubits: 6" in prompt


def test_an_empty_or_blank_context_says_none_yet():
    assert bound_context("") == EMPTY_CONTEXT == bound_context("  \n ") == bound_context(None)


def test_a_long_context_is_cut_to_its_bound_with_a_marker_saying_how_much_was_kept():
    lines = [f"candidate {i}: energy -{i}.0" for i in range(400)]
    text = "\n".join(lines)
    bounded = bound_context(text, 1000)
    assert len(bounded) <= 1000
    assert bounded.startswith("candidate 0: energy -0.0")
    shown = int(re.search(r"context truncated: (\d+) of (\d+) characters shown", bounded).group(1))
    assert bounded.endswith(f"[... context truncated: {shown} of {len(text)} characters shown]")
    assert text.startswith(bounded.split("\n[... context truncated")[0])
    assert render_prompt(get_goal("tfim-4"), text, max_context_chars=1000).count("candidate ") < 100


def test_a_large_molecule_shows_its_largest_terms_and_counts_the_rest():
    goal = get_goal("lih")
    prompt = render_prompt(goal, "", max_terms=10)
    line = next(line for line in prompt.splitlines() if line.startswith("HAMILTONIAN: "))
    assert f"(+{len(goal.hamiltonian) - 10} more terms, {len(goal.hamiltonian)} in total)" in line
    assert "- Number of qubits: 12" in prompt


def test_goal_limits_appear_in_the_specifications():
    goal = get_goal("tfim-6", max_depth=12, allowed_gates=["ry", "cz"])
    prompt = render_prompt(goal, "")
    assert "- Maximum depth: 12\n- Allowed gates: ry, cz\n" in prompt


def test_chat_messages_put_the_system_prompt_first_or_fold_it_into_the_user_turn():
    messages = chat_messages("hello")
    assert messages == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "hello"}]
    folded = chat_messages("hello", system_role=False)
    assert folded == [{"role": "user", "content": SYSTEM_PROMPT + "\n\nhello"}]


@pytest.mark.skipif(not ORIGINAL.is_file(), reason="the original seed document is only in the team's workspace")
def test_the_committed_seed_document_is_the_users_document_verbatim():
    assert SEED.read_bytes() == ORIGINAL.read_bytes()
