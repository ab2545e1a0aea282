"""Edge statistics: normalized pointwise mutual information over documents or over sentences.

NPMI(a, b) = ln(p(a,b) / (p(a) p(b))) / -ln p(a,b), in [-1, 1]: 1 when a and b always occur together, 0 when
independent, -1 in the limit of never together. p(x) = count(x) / N with N the documents loaded (document NPMI) or
the sentences holding at least one concept (sentence NPMI). Below `min_count` joint occurrences an edge has no NPMI
(None): PMI of rare pairs is dominated by chance.
"""

from __future__ import annotations

import math
from typing import Literal

By = Literal["document", "sentence"]


def npmi(joint: int, count_a: int, count_b: int, total: int, *, min_count: int = 1) -> float | None:
    """NPMI of a pair seen `joint` times among `total`, its ends `count_a` and `count_b` times (see module doc)."""
    if joint < max(1, min_count) or total <= 0 or count_a <= 0 or count_b <= 0:
        return None
    p_ab = joint / total
    if p_ab >= 1.0:
        return 1.0  # both everywhere: the limit of the formula
    return math.log(p_ab / ((count_a / total) * (count_b / total))) / -math.log(p_ab)
