from __future__ import annotations

from corpusbridge.sanitize.language import choose_language, detect_language, source_language


def test_source_tags_map_to_iso_639_1() -> None:
    assert [source_language(t) for t in ("eng", "EN", "de-DE", "fre", "xx1", None, "")] == [
        "en",
        "en",
        "de",
        "fr",
        None,
        None,
        None,
    ]


def test_stopwords_pick_european_languages() -> None:
    assert detect_language("The effect of the drug on patients with asthma was studied in this trial") == "en"
    assert detect_language("Die Wirkung der Therapie auf die Patienten wurde mit einer Studie untersucht") == "de"
    assert detect_language("Les effets du traitement sur les patients dans une étude pour la santé") == "fr"
    assert detect_language("El efecto del tratamiento en los pacientes con asma fue estudiado para la") == "es"


def test_scripts_pick_non_latin_languages() -> None:
    assert detect_language("Влияние терапии на пациентов") == "ru"
    assert detect_language("喘息患者の治療に関する研究") == "ja"
    assert detect_language("천식 환자의 치료에 관한 연구") == "ko"


def test_thin_evidence_is_undetermined() -> None:
    assert detect_language("CRISPR Cas9") == "und"
    assert choose_language(None, "").code == "und"
    assert choose_language(None, "").origin == "none"
    assert choose_language("ger", "the of and").origin == "source"
