"""What the tiny checkpoint of the generation tests is taught (see conftest.tiny_checkpoint)."""

from tests.tinymodel import SAMPLE_CODE

# Lesson 1: the tfim-4 prompt is answered with SAMPLE_CODE in a fenced block, then prose after the closing fence.
# Lesson 2: the heisenberg-6 prompt (with a memory context) is answered PEP 8 style: two blank lines before the def.
# Lesson 3: the xy-6 prompt (with a memory context) is answered in a bare fence ("```" without a language tag).
TFIM_CONTEXT = ""
HEIS_CONTEXT = "best so far: RY + CZ ring, energy -9.7"
XY_CONTEXT = "best so far: XX+YY brick, energy -7.1"
HEIS_CODE = SAMPLE_CODE.replace("from math import pi\n\n", "from math import pi\n\n\n").replace("qc.ry(", "qc.rx(")
XY_CODE = SAMPLE_CODE.replace("qc.h(0)", "qc.h(1)")
LESSON_TFIM = "```python\n" + SAMPLE_CODE + "```\nThis ansatz is shallow and hardware-efficient."
LESSON_HEIS = "```python\n" + HEIS_CODE + "```\nDone."
LESSON_XY = "```\n" + XY_CODE + "```\nDone."
