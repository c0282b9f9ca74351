"""Regenerate the committed molecular Hamiltonians (workers/evaluation/goals/data/*.json).

Needs the optional ``molecules`` extra (PySCF + qiskit-nature); workers never do, they read the JSON.
Each file records the geometry, basis, fermion-to-qubit mapping, the software versions that produced it and the
exact energies, so a reader can check where every coefficient came from.

    pip install -e '.[molecules]'
    python scripts/generate_molecules.py            # rewrites h2.json and lih.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import platform

MOLECULES = {
    "h2": {
        "atom": "H 0 0 0; H 0 0 0.735",
        "bond_length_angstrom": 0.735,
        "description": "Hydrogen molecule H2, STO-3G basis, bond length 0.735 Å, Jordan-Wigner mapping "
        "(4 spin orbitals -> 4 qubits). Energy includes nuclear repulsion.",
    },
    "lih": {
        "atom": "Li 0 0 0; H 0 0 1.5",
        "bond_length_angstrom": 1.5,
        "description": "Lithium hydride LiH, STO-3G basis, bond length 1.5 Å, Jordan-Wigner mapping "
        "(12 spin orbitals -> 12 qubits, no frozen core). Energy includes nuclear repulsion.",
    },
}

OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "workers" / "evaluation" / "data"


def build(name: str, spec: dict) -> dict:
    import numpy as np
    import pyscf
    import qiskit
    import qiskit_nature
    import scipy.sparse.linalg as sla
    from pyscf import fci, gto, scf
    from qiskit_nature.second_q.drivers import PySCFDriver
    from qiskit_nature.second_q.mappers import JordanWignerMapper
    from qiskit_nature.units import DistanceUnit

    problem = PySCFDriver(atom=spec["atom"], basis="sto3g", unit=DistanceUnit.ANGSTROM).run()
    qubit_op = JordanWignerMapper().map(problem.hamiltonian.second_q_op()).simplify(atol=1e-12)
    nuclear = float(problem.hamiltonian.nuclear_repulsion_energy)
    electronic_min = float(sla.eigsh(qubit_op.to_matrix(sparse=True), k=1, which="SA")[0][0])
    mol = gto.M(atom=spec["atom"], basis="sto3g", verbose=0)
    fci_energy = float(fci.FCI(scf.RHF(mol).run()).kernel()[0])
    terms = [[label, float(np.real(c))] for label, c in qubit_op.to_list()]
    assert all(abs(np.imag(c)) < 1e-12 for _, c in qubit_op.to_list())
    return {
        "name": name,
        "description": spec["description"],
        "num_qubits": qubit_op.num_qubits,
        "pauli_order": "qiskit little-endian labels: the rightmost character acts on qubit 0",
        "electronic_terms": terms,
        "nuclear_repulsion": nuclear,
        "total_energy_ground": electronic_min + nuclear,
        "fci_energy_pyscf": fci_energy,
        "num_particles": list(problem.num_particles),
        "provenance": {
            "geometry": spec["atom"],
            "bond_length_angstrom": spec["bond_length_angstrom"],
            "unit": "angstrom",
            "basis": "sto-3g",
            "mapping": "jordan-wigner",
            "active_space": "full (no frozen core)",
            "charge": 0,
            "spin": 0,
            "generator": "scripts/generate_molecules.py",
            "versions": {
                "python": platform.python_version(),
                "pyscf": pyscf.__version__,
                "qiskit": qiskit.__version__,
                "qiskit_nature": qiskit_nature.__version__,
            },
            "generated": dt.date.today().isoformat(),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=sorted(MOLECULES), help="molecules to regenerate")
    args = parser.parse_args()
    for name in args.names:
        data = build(name, MOLECULES[name])
        path = OUT_DIR / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{path}: {data['num_qubits']} qubits, {len(data['electronic_terms'])} terms, "
              f"E0 = {data['total_energy_ground']:.12f} Ha (FCI {data['fci_energy_pyscf']:.12f})")


if __name__ == "__main__":
    main()
