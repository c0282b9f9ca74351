"""The goals wing: what a candidate must solve.

``goal`` (the Goal dataclass, limits, lattice goals at any size), ``catalog`` (built-in names, molecules),
``files`` (YAML goal files and specs, validated; ``get_goal``: a built-in name or a goal file's path),
``hamiltonians`` (lattice families, committed molecules), ``exact`` (exact ground energies, cached).
"""

from .catalog import builtin_goal, builtin_names, molecule_goal
from .files import get_goal, goal_from_mapping, goal_from_spec, load_goal_file
from .goal import (
    CHEMICAL_ACCURACY,
    DEFAULT_ALLOWED_GATES,
    DEFAULT_MAX_DEPTH,
    Goal,
    check_limits,
    is_valid_goal_name,
    known_gate_names,
    lattice_goal,
)
from .hamiltonians import curve_members

__all__ = ["CHEMICAL_ACCURACY", "DEFAULT_ALLOWED_GATES", "DEFAULT_MAX_DEPTH", "Goal", "builtin_goal", "builtin_names", "check_limits",
           "curve_members", "get_goal", "goal_from_mapping", "goal_from_spec", "is_valid_goal_name",
           "known_gate_names", "lattice_goal", "load_goal_file", "molecule_goal"]
