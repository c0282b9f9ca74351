"""Code extraction from completions: fenced, unterminated, bare, several blocks, prose, malformed. Nothing runs."""

import textwrap

from workers.generation.extract import extract_code

CODE = textwrap.dedent('''\
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    def create_ansatz(num_qubits: int) -> QuantumCircuit:
        qc = QuantumCircuit(num_qubits)
        for q in range(num_qubits):
            qc.ry(Parameter(f"t{q}"), q)
        return qc
    ''')


def test_a_fenced_python_block_is_extracted_without_the_prose_around_it():
    completion = f"Here is an ansatz for the TFIM:\n\n```python\n{CODE}```\n\nIt uses one RY layer."
    found = extract_code(completion)
    assert found.code == CODE and found.error is None and found.source == "fenced"
    code, error = found
    assert (code, error) == (CODE, None)


def test_a_block_whose_closing_fence_the_stop_sequence_removed_is_still_extracted():
    # the stop sequence "```\n" ends generation before the closing fence, which is never part of the output
    found = extract_code(f"```python\n{CODE}")
    assert found.code == CODE and found.source == "unterminated-fence"


def test_a_fence_without_a_language_tag_counts_as_python():
    assert extract_code(f"```\n{CODE}```").code == CODE


def test_bare_code_is_extracted_and_leading_and_trailing_prose_are_dropped():
    assert extract_code(CODE).code == CODE
    found = extract_code(f"Sure! Below is the code.\n{CODE}\nThis circuit has one parameter per qubit.")
    assert found.code == CODE and found.source == "bare"


def test_the_block_that_defines_create_ansatz_wins_over_other_blocks():
    completion = (f"Install first:\n```bash\npip install qiskit\n```\nA helper:\n```python\nimport numpy as np\n"
                  f"x = np.zeros(3)\n```\nThe ansatz:\n```python\n{CODE}```\n")
    assert extract_code(completion).code == CODE


def test_with_several_defining_blocks_the_last_one_the_corrected_version_wins():
    first = CODE.replace("qc.ry", "qc.rx")
    completion = f"First try:\n```python\n{first}```\nBetter:\n```python\n{CODE}```"
    assert extract_code(completion).code == CODE


def test_a_syntax_error_in_the_defining_block_is_reported_with_its_line():
    broken = CODE.replace("for q in range(num_qubits):", "for q in range(num_qubits)")
    found = extract_code(f"```python\n{broken}```")
    assert found.code is None
    assert "syntax error at line 6" in found.error and "create_ansatz" in found.error


def test_a_completion_cut_inside_the_code_says_it_may_have_been_cut():
    found = extract_code("```python\n" + CODE[: CODE.index("range(") + 8])
    assert found.code is None
    assert "ended inside the block" in found.error


def test_a_completion_cut_before_the_function_says_a_stop_sequence_may_have_cut_it():
    # what the seed's "\n\n\n" stop sequence, applied literally, does to PEP 8 code (two blank lines after the imports)
    found = extract_code("```python\nfrom qiskit import QuantumCircuit")
    assert found.code is None
    assert "never reaches 'def create_ansatz('" in found.error and "stop sequence" in found.error


def test_code_that_defines_another_function_is_rejected_with_the_expected_signature():
    found = extract_code("```python\ndef build(n):\n    return n\n```")
    assert found.code is None
    assert "create_ansatz(num_qubits: int) -> QuantumCircuit" in found.error


def test_a_nested_create_ansatz_is_not_a_top_level_definition():
    code = "class A:\n    def create_ansatz(self, n):\n        return n\n"
    assert extract_code(f"```python\n{code}```").code is None


def test_empty_and_prose_only_completions_get_a_clear_error():
    assert "empty" in extract_code("").error
    assert "empty" in extract_code("   \n").error
    found = extract_code("I cannot help with quantum circuits today.")
    assert found.code is None and "create_ansatz" in found.error


def test_extraction_never_executes_the_code(tmp_path):
    marker = tmp_path / "ran"
    hostile = (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n\n"
               "def create_ansatz(n):\n    return n\n")
    assert extract_code(f"```python\n{hostile}```").code == hostile
    assert not marker.exists()


def test_windows_line_endings_are_normalised():
    assert extract_code(f"```python\r\n{CODE.replace(chr(10), chr(13) + chr(10))}```").code == CODE
