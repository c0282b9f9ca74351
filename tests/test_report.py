"""The run report: plots exist, the Pareto front is right, the HTML shows the best code."""

import struct

from scheduler.report import ReportPoint, pareto_front, write_report


def point(label, err, tq, it=0, baseline=False, sizes=(4, 6, 8), var=(1e-2, 8e-3, 6e-3)):
    return ReportPoint(label=label, iteration=it, error=err, two_qubit_gates=tq, depth=tq + 3, num_parameters=4,
                       status="valid", code=f"def create_ansatz(n):  # {label}\n    ...", bp_sizes=sizes,
                       bp_variances=var, decay_rate=-0.1, has_barren_plateau=False, baseline=baseline)


def test_pareto_front_keeps_only_undominated_points():
    pts = [point("a", 0.5, 2), point("b", 0.1, 4), point("c", 0.3, 5), point("d", 0.01, 10), point("e", 0.2, 3)]
    assert [p.label for p in pareto_front(pts)] == ["a", "e", "b", "d"]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_report_writes_three_plots_per_goal_and_an_html_page(tmp_path):
    pts = [point(f"c{i}", 0.5 / (i + 1), 3 + i, it=i) for i in range(5)]
    pts += [point("EfficientSU2-r1", 0.2, 5, baseline=True), point("HVA", 1e-12, 6, baseline=True)]
    page = write_report(tmp_path, {"id": "run-1"}, {"tfim-6": {"exact_energy": -7.29, "iterations": 5,
                                                                 "points": pts}})
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in pngs] == ["tfim-6-error-per-iteration.png", "tfim-6-gradient-variance.png",
                                      "tfim-6-pareto.png"]
    for p in pngs:
        w, h = png_size(p)
        assert w > 300 and h > 200
    text = page.read_text()
    assert "# c4" in text  # the best code (lowest error) is shown
    for p in pngs:
        assert p.name in text
    assert "EfficientSU2-r1" in text and (tmp_path / "points.json").exists()
