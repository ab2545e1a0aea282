"""What the payload finds in a fixed set of texts, pinned to EXTRACTION_RULES: a change of what matching or sentence
splitting finds must raise EXTRACTION_RULES (extract/results.py), or a reprocess would reuse the old batch id and
load nothing new. When this test fails after such a change: raise EXTRACTION_RULES and record the new digest here."""

from __future__ import annotations

import hashlib
import json

from corpusbridge.extract.results import EXTRACTION_RULES
from corpusbridge.extract.sentences.splitter import SentenceSplitter

# EXTRACTION_RULES -> sha256 of the matches (concept, start, end, sentence) over TEXTS.
DIGESTS = {2: "681077b6d6a5b2803d0186c2103082f74074e62de69869585e59b8f367142bd7"}

TERMS = {
    "lung": "C_LUNG", "lung cancer": "C_LC", "small cell lung cancer": "C_SCLC", "cell": "C_CELL",
    "cell line": "C_CELL_LINE", "IL-6": "C_IL6", "t(9;22)": "C_T922", "Straße": "C_STRASSE", "café": "C_CAFE",
    "gene expression": "C_GE", "asthma": "C_ASTHMA", "mild asthma": "C_MILD",
}  # fmt: skip
TEXTS = [
    "Small cell lung cancer, lung cancer and lung.",
    "Gene expression in small cell lung\n\nCancer screening in cell lines. Lung cancer.",
    "Mild asthma in adults.\n\nOBJECTIVE: IL-6 and t(9;22) in Straße cafés. Dr. Smith saw mild  asthma!",
    "Title without a period\n\nAbstract first sentence. Second one? Third one! gene\n \nexpression",
    "lung-cancer lung \n cancer; IL 6, IL6, t 9 22 - ﬁle café Café CAFÉ",
    "\n\nLeading blank lines, asthma.\n\n\n\nTrailing ones, lung.\n\n",
]


def test_what_the_payload_finds_is_pinned_to_its_rules_version(make_matcher) -> None:
    matcher, splitter = make_matcher(TERMS), SentenceSplitter()
    found = []
    for text in TEXTS:
        matches = matcher.locate(text)
        sentences = splitter.indices(text, [start for _, start, _ in matches])
        found.append([[c, s, e, n] for (c, s, e), n in zip(matches, sentences, strict=True)])
    digest = hashlib.sha256(json.dumps(found).encode()).hexdigest()
    assert digest == DIGESTS.get(EXTRACTION_RULES), (
        f"the payload finds other concepts or sentences than EXTRACTION_RULES {EXTRACTION_RULES} did (digest "
        f"{digest}): if that is meant, raise EXTRACTION_RULES in extract/results.py and record the digest here"
    )


def test_a_payload_with_other_rules_refuses_the_batch(tmp_path) -> None:
    """A cluster python from another checkout than the workstation's would find other concepts than the batch id
    promises; it stops before reading the shard, saying what to install."""
    import pytest

    from corpusbridge.export.manifest import ExportManifest, ShardEntry, read_manifest, write_manifest
    from corpusbridge.extract.program import ExtractError, shard_from_manifest

    manifest = tmp_path / "manifest.json"
    shards = [ShardEntry(0, "shard-00000.parquet", 1, "0" * 64)]
    write_manifest(manifest, ExportManifest("b1", "fp", shards, EXTRACTION_RULES))
    assert read_manifest(manifest).extraction_rules == EXTRACTION_RULES and shard_from_manifest(manifest, 0).index == 0
    write_manifest(manifest, ExportManifest("b1", "fp", shards, EXTRACTION_RULES + 1))
    with pytest.raises(ExtractError, match=rf"exported for extraction rules {EXTRACTION_RULES + 1}, this payload"):
        shard_from_manifest(manifest, 0)
    write_manifest(manifest, ExportManifest("b1", "fp", shards))  # a manifest from before the field: accepted
    assert shard_from_manifest(manifest, 0).index == 0
