"""Where the tests read the user's seed document: the verbatim copy committed at docs/seed/MODEL-CONFIG.md."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEED = ROOT / "docs" / "seed" / "MODEL-CONFIG.md"
# The original sits beside the main checkout in the team's workspace (../shared/seed); not on a user's machine.
ORIGINAL = ROOT.parent / "shared" / "seed" / "MODEL-CONFIG.md"
