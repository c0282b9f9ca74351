"""The seed document's system prompt and user template, filled from a goal (../shared/seed/MODEL-CONFIG.md).

Both texts are copied verbatim from the seed; ``tests/test_prompts.py`` compares them with the document.
"""

from __future__ import annotations

from workers.evaluation.goals import Goal

SYSTEM_PROMPT = """\
You are a quantum computing expert specializing in variational quantum algorithms. Your task is to generate efficient, trainable quantum circuits in Qiskit.

Key principles:
1. Always use Parameters for trainable values
2. Prefer shallow circuits over deep ones
3. Use local rotations followed by entanglement
4. Avoid patterns that cause barren plateaus
5. Match circuit structure to problem symmetry"""

USER_TEMPLATE = """\
TASK: Generate a variational ansatz for the following quantum physics problem.

PROBLEM: {problem_description}

HAMILTONIAN: {hamiltonian_description}

SPECIFICATIONS:
- Number of qubits: {num_qubits}
- Maximum depth: {max_depth}
- Allowed gates: {allowed_gates}

CONTEXT:
{memory_context}

REQUIREMENTS:
1. Define function: create_ansatz(num_qubits: int) -> QuantumCircuit
2. Use qiskit.circuit.Parameter for all trainable parameters
3. Return a QuantumCircuit object
4. Include necessary imports

Generate only the Python code."""

EMPTY_CONTEXT = "None yet."
PROMPT_PREFIX = USER_TEMPLATE.split("{", 1)[0]
"""Every rendered prompt starts with this (the template's text before its first field)."""
PROMPT_SUFFIX = USER_TEMPLATE.rsplit("}", 1)[1]
"""Every rendered prompt ends with this (the template's text after its last field)."""
DEFAULT_MAX_CONTEXT_CHARS = 4000
DEFAULT_MAX_TERMS = 24


def bound_context(memory_context: str | None, max_chars: int = DEFAULT_MAX_CONTEXT_CHARS) -> str:
    """The CONTEXT block: "None yet." when empty; otherwise at most ``max_chars`` characters.

    Longer text keeps its beginning (the loop puts the most useful lines first), cut at a line boundary when one
    is near, followed by a marker saying how much was left out.
    """
    text = (memory_context or "").strip()
    if not text:
        return EMPTY_CONTEXT
    if len(text) <= max_chars:
        return text
    marker = "\n[... context truncated: {shown} of {total} characters shown]"
    budget = max(0, max_chars - len(marker.format(shown=max_chars, total=len(text))))
    head = text[:budget]
    newline = head.rfind("\n")
    if newline >= budget // 2:
        head = head[:newline]
    head = head.rstrip()
    return head + marker.format(shown=len(head), total=len(text))


def hamiltonian_description(goal: Goal, max_terms: int = DEFAULT_MAX_TERMS) -> str:
    """A readable Pauli sum (qubit indices after each Pauli letter), shortened with a term count when long."""
    return goal.pauli_sum_text(max_terms)


def render_prompt(goal: Goal, memory_context: str | None = "", *, max_context_chars: int = DEFAULT_MAX_CONTEXT_CHARS,
                  max_terms: int = DEFAULT_MAX_TERMS) -> str:
    """The user prompt for ``goal``: the seed template with the goal's fields and the bounded memory context."""
    return USER_TEMPLATE.format(
        problem_description=goal.description.strip(),
        hamiltonian_description=hamiltonian_description(goal, max_terms),
        num_qubits=goal.num_qubits,
        max_depth=goal.max_depth,
        allowed_gates=", ".join(goal.allowed_gates),
        memory_context=bound_context(memory_context, max_context_chars),
    )


def is_rendered_prompt(text: str | None) -> bool:
    """Whether ``text`` came out of :func:`render_prompt` (the seed template's fixed head and tail). Batches the
    loop writes without asking a model (baselines: prompt ``baselines``) fail this."""
    return bool(text) and text.startswith(PROMPT_PREFIX) and text.endswith(PROMPT_SUFFIX)


def chat_messages(prompt: str, *, system_prompt: str = SYSTEM_PROMPT, system_role: bool = True) -> list[dict]:
    """Messages for a tokenizer's chat template. Templates without a system role get it folded into the user turn."""
    if system_role:
        return [{"role": "system", "content": system_prompt}, {"role": "user", "content": prompt}]
    return [{"role": "user", "content": f"{system_prompt}\n\n{prompt}"}]


def chat_text(tokenizer, prompt: str, *, system_prompt: str = SYSTEM_PROMPT, system_role: bool = True) -> str:
    """The full model input: the tokenizer's own chat template applied, ending where the assistant's answer starts."""
    messages = chat_messages(prompt, system_prompt=system_prompt, system_role=system_role)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
