"""The neighbourhood drawing: valid SVG, one node and label per neighbour, edge width following NPMI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from corpusbridge.graph.query import Neighbour, Related, Totals
from corpusbridge.graph.svg import neighbourhood_svg

SVG = "{http://www.w3.org/2000/svg}"


def _related(count: int) -> Related:
    neighbours = [
        Neighbour(f"C{i:02d}", f"term <{i}> & co", 50 - i, 40 - i, 100 + 10 * i, 0.9 - 0.05 * i, None)
        for i in range(count)
    ]
    return Related("C99", "asthma", 400, 350, "document", Totals(1000, 5000), neighbours)


def test_thirty_neighbours_each_get_a_node_and_a_label() -> None:
    root = ET.fromstring(neighbourhood_svg(_related(30)))
    assert len(root.findall(f"{SVG}circle")) == 31
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert all(f"C{i:02d}" in texts for i in range(30)) and "term <0> & co" in texts
    widths = [float(line.get("stroke-width", 0)) for line in root.findall(f"{SVG}line")]
    assert widths[0] > widths[10] and min(widths) == 1  # the strongest first; NPMI <= 0 drawn thin and grey


def test_a_concept_without_neighbours_still_draws() -> None:
    root = ET.fromstring(neighbourhood_svg(_related(0)))
    assert len(root.findall(f"{SVG}circle")) == 1


def test_the_canvas_holds_every_label() -> None:
    """Labels at the sides run outward: the canvas widens to hold the longest (they were cut at the right edge)."""
    from corpusbridge.graph.svg import CHAR_WIDTH

    long = "a very long label of a concept with many words"
    neighbours = [Neighbour(f"C{i:02d}", long, 50 - i, 40 - i, 100, 0.5, None) for i in range(30)]
    root = ET.fromstring(neighbourhood_svg(Related("C99", "asthma", 400, 350, "document", Totals(1000, 5000),
                                                   neighbours)))  # fmt: skip
    left, _, width, _ = (float(v) for v in root.get("viewBox", "").split())
    for text in root.iter(f"{SVG}text"):
        x, size = float(text.get("x", 0)), len(text.text or "") * CHAR_WIDTH
        start = {"start": x, "end": x - size, "middle": x - size / 2}[text.get("text-anchor", "start")]
        assert left <= start and start + size <= left + width, text.text
