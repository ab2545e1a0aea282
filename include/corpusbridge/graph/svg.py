"""A concept's neighbourhood as a plain SVG: the concept in the middle, its neighbours on a ring in rank order
(strongest first, clockwise from the top), node area proportional to documents, edge width to NPMI. Labels sit
outside the ring, anchored away from the centre, so 30 neighbours stay readable without a layout engine."""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

from corpusbridge.graph.query import Neighbour, Related

SIZE = 960
RING = 300
MAX_NODE = 28.0
MIN_NODE = 4.0
FONT = 12
CHAR_WIDTH = 0.62 * FONT  # a generous average for Helvetica/Arial: the canvas widens to hold the longest label


def neighbourhood_svg(found: Related) -> str:
    """The SVG document for `found` (a `related` answer)."""
    centre = SIZE / 2
    biggest = max([found.docs, *(n.concept_docs for n in found.neighbours)], default=1) or 1
    parts = [
        f'<text x="16" y="28" font-size="18">{escape(_name(found.concept_id, found.label))}: '
        f"{len(found.neighbours)} neighbours by {found.by}</text>",
        f'<text x="16" y="48" font-size="12" fill="#555">node area = documents ({found.totals.docs} loaded); '
        "edge width = NPMI; grey edge = NPMI at or below 0 or below the minimum count</text>",
    ]
    left, right = 0.0, float(SIZE)  # the canvas, widened below to hold every label
    count = len(found.neighbours)
    places = [_place(i, count, centre) for i in range(count)]
    for neighbour, (x, y, _) in zip(found.neighbours, places, strict=True):
        parts.append(_edge(centre, x, y, _score(neighbour, found.by)))
    parts.append(_node(centre, centre, _radius(found.docs, biggest), "#d9534f"))
    parts.append(_label(centre, centre + _radius(found.docs, biggest) + 16, "middle", found.concept_id, found.label))
    for neighbour, (x, y, angle) in zip(found.neighbours, places, strict=True):
        radius = _radius(neighbour.concept_docs, biggest)
        parts.append(_node(x, y, radius, "#4a7ab5"))
        lx, ly = x + (radius + 6) * math.cos(angle), y + (radius + 6) * math.sin(angle) + 4
        # Only the labels straight above or below a node are centred, and they keep clear of the labels beside.
        anchor = "start" if math.cos(angle) > 0.05 else "end" if math.cos(angle) < -0.05 else "middle"
        if anchor == "middle":
            ly += 10 if math.sin(angle) > 0 else -6
        text = _name(neighbour.concept_id, neighbour.label) + f" ({neighbour.docs})"
        width = len(text) * CHAR_WIDTH
        start = lx if anchor == "start" else lx - width if anchor == "end" else lx - width / 2
        left, right = min(left, start - 8), max(right, start + width + 8)
        parts.append(_label(lx, ly, anchor, neighbour.concept_id, neighbour.label, f" ({neighbour.docs})"))
    width = right - left
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{SIZE}" '
        f'viewBox="{left:.0f} 0 {width:.0f} {SIZE}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect x="{left:.0f}" width="{width:.0f}" height="{SIZE}" fill="white"/>',
    ]
    return "\n".join([*head, *parts, "</svg>"]) + "\n"


def _place(rank: int, count: int, centre: float) -> tuple[float, float, float]:
    angle = -math.pi / 2 + 2 * math.pi * rank / max(count, 1)
    return centre + RING * math.cos(angle), centre + RING * math.sin(angle), angle


def _radius(docs: int, biggest: int) -> float:
    return MIN_NODE + (MAX_NODE - MIN_NODE) * math.sqrt(max(docs, 0) / biggest)


def _score(neighbour: Neighbour, by: str) -> float | None:
    return neighbour.npmi_sentences if by == "sentence" else neighbour.npmi_docs


def _edge(centre: float, x: float, y: float, score: float | None) -> str:
    if score is None or score <= 0:
        return f'<line x1="{centre:.1f}" y1="{centre:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#bbb" stroke-width="1"/>'
    width = 1 + 11 * score
    return (
        f'<line x1="{centre:.1f}" y1="{centre:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#4a7ab5" '
        f'stroke-opacity="0.6" stroke-width="{width:.2f}"><title>NPMI {score:.3f}</title></line>'
    )


def _node(x: float, y: float, radius: float, colour: str) -> str:
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{colour}" stroke="white" stroke-width="1.5"/>'


def _label(x: float, y: float, anchor: str, concept_id: str, label: str | None, suffix: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{FONT}" text-anchor="{anchor}">'
        f"{escape(_name(concept_id, label) + suffix)}</text>"
    )


def _name(concept_id: str, label: str | None) -> str:
    return f"{label} [{concept_id}]" if label else concept_id
