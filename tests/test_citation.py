"""cite(): BibTeX for the package, methods and the survey behind a result."""
import re

import pytest
from astropy.table import Table

import astro_semsearch
from astro_semsearch import cite
from astro_semsearch.citation import REFERENCES


def keys(bib):
    return re.findall(r"@\w+\{([^,]+),", bib)


def test_default_citation_has_package_methods_and_default_survey():
    bib = cite()
    k = keys(bib)
    assert k[0] == "astro_semsearch"  # the package first, from the CITATION file
    assert bib.startswith(astro_semsearch.__citation__.strip())
    for key in ("koblischke2025aionsearch", "radford2021clip", "chen2020simclr", "reimers2019sbert",
                "johnson2019faiss", "douze2024faiss", "dey2019legacy", "walmsley2022gzdecals"):
        assert key in k
    assert len(k) == len(set(k))  # no duplicates
    assert "2103.00020" in bib and "2002.05709" in bib and "1908.10084" in bib and "2401.08281" in bib
    assert "2512.11982" in bib  # AION-Search, Koblischke et al. 2025


@pytest.mark.parametrize(
    "survey, present, absent",
    [
        ("SDSS DR7 (Galaxy Zoo 2)", ["york2000sdss", "willett2013gz2"], ["dey2019legacy", "walmsley2022gzdecals"]),
        ("DESI Legacy Imaging Surveys DR10", ["dey2019legacy"], ["walmsley2022gzdecals"]),
        ("Galaxy Zoo DECaLS (DR5)", ["dey2019legacy", "walmsley2022gzdecals"], []),
        (None, [], ["dey2019legacy", "walmsley2022gzdecals"]),
    ],
)
def test_survey_entry_follows_the_results_meta(survey, present, absent):
    results = Table({"rank": [1]}, meta={"astro_semsearch": {"survey": survey}})
    k = keys(cite(results))
    for key in present:
        assert key in k
    for key in absent:
        assert key not in k


def test_lenscat_crossmatch_is_cited():
    t = Table({"rank": [1]}, meta={"astro_semsearch": {"survey": "x"}, "crossmatch": {"catalog": "lenscat"}})
    assert "lenscat" in keys(cite(t))
    assert "lenscat" not in keys(cite(Table({"rank": [1]})))


def test_entries_are_balanced_bibtex():
    for key, entry in REFERENCES.items():
        assert entry.count("{") == entry.count("}"), key
        assert keys(entry) == [key]


def test_cite_rejects_non_tables():
    with pytest.raises(TypeError, match="astropy Table"):
        cite("hits.ecsv")
