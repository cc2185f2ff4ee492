"""BibTeX for what a result depends on: this package, the methods, the survey.

>>> from astro_semsearch import cite
>>> bib = cite()
>>> "@software{astro_semsearch" in bib and "radford2021clip" in bib
True
"""
from __future__ import annotations

from importlib import resources

from astropy.table import Table

from ._meta import meta_section
from .exceptions import InvalidTypeError

__all__ = ["cite", "REFERENCES"]

#: BibTeX of the method papers and data sets, keyed by citation key.
REFERENCES: dict[str, str] = {
    "koblischke2025aionsearch": """@misc{koblischke2025aionsearch,
  author        = {Koblischke, Nolan and Parker, Liam and Lanusse, Francois and Espejo Morales, Irina and Bovy, Jo and Ho, Shirley},
  title         = {Semantic search for 100M+ galaxy images using AI-generated captions},
  year          = {2025},
  eprint        = {2512.11982},
  archivePrefix = {arXiv},
  primaryClass  = {astro-ph.IM},
  url           = {https://arxiv.org/abs/2512.11982}
}""",
    "radford2021clip": """@inproceedings{radford2021clip,
  author        = {Radford, Alec and Kim, Jong Wook and Hallacy, Chris and Ramesh, Aditya and Goh, Gabriel and Agarwal, Sandhini and Sastry, Girish and Askell, Amanda and Mishkin, Pamela and Clark, Jack and Krueger, Gretchen and Sutskever, Ilya},
  title         = {Learning Transferable Visual Models From Natural Language Supervision},
  booktitle     = {Proceedings of the 38th International Conference on Machine Learning (ICML)},
  year          = {2021},
  eprint        = {2103.00020},
  archivePrefix = {arXiv}
}""",
    "chen2020simclr": """@inproceedings{chen2020simclr,
  author        = {Chen, Ting and Kornblith, Simon and Norouzi, Mohammad and Hinton, Geoffrey},
  title         = {A Simple Framework for Contrastive Learning of Visual Representations},
  booktitle     = {Proceedings of the 37th International Conference on Machine Learning (ICML)},
  year          = {2020},
  eprint        = {2002.05709},
  archivePrefix = {arXiv}
}""",
    "reimers2019sbert": """@inproceedings{reimers2019sbert,
  author        = {Reimers, Nils and Gurevych, Iryna},
  title         = {Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks},
  booktitle     = {Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing (EMNLP-IJCNLP)},
  year          = {2019},
  eprint        = {1908.10084},
  archivePrefix = {arXiv}
}""",
    "johnson2019faiss": """@article{johnson2019faiss,
  author        = {Johnson, Jeff and Douze, Matthijs and J{\\'e}gou, Herv{\\'e}},
  title         = {Billion-scale similarity search with GPUs},
  journal       = {IEEE Transactions on Big Data},
  year          = {2019},
  eprint        = {1702.08734},
  archivePrefix = {arXiv}
}""",
    "douze2024faiss": """@misc{douze2024faiss,
  author        = {Douze, Matthijs and Guzhva, Alexandr and Deng, Chengqi and Johnson, Jeff and Szilvasy, Gergely and Mazar{\\'e}, Pierre-Emmanuel and Lomeli, Maria and Hosseini, Lucas and J{\\'e}gou, Herv{\\'e}},
  title         = {The Faiss library},
  year          = {2024},
  eprint        = {2401.08281},
  archivePrefix = {arXiv}
}""",
    "astropy2022": """@article{astropy2022,
  author        = {{Astropy Collaboration}},
  title         = {The Astropy Project: Sustaining and Growing a Community-oriented Open-source Project and the Latest Major Release (v5.0) of the Core Package},
  journal       = {The Astrophysical Journal},
  volume        = {935},
  pages         = {167},
  year          = {2022},
  doi           = {10.3847/1538-4357/ac7c74}
}""",
    "willett2013gz2": """@article{willett2013gz2,
  author        = {Willett, Kyle W. and others},
  title         = {Galaxy Zoo 2: detailed morphological classifications for 304 122 galaxies from the Sloan Digital Sky Survey},
  journal       = {Monthly Notices of the Royal Astronomical Society},
  volume        = {435},
  pages         = {2835},
  year          = {2013},
  doi           = {10.1093/mnras/stt1458}
}""",
    "walmsley2022gzdecals": """@article{walmsley2022gzdecals,
  author        = {Walmsley, Mike and others},
  title         = {Galaxy Zoo DECaLS: Detailed visual morphology measurements from volunteers and deep learning for 314 000 galaxies},
  journal       = {Monthly Notices of the Royal Astronomical Society},
  volume        = {509},
  pages         = {3966},
  year          = {2022},
  doi           = {10.1093/mnras/stab2093}
}""",
    "dey2019legacy": """@article{dey2019legacy,
  author        = {Dey, Arjun and others},
  title         = {Overview of the DESI Legacy Imaging Surveys},
  journal       = {The Astronomical Journal},
  volume        = {157},
  pages         = {168},
  year          = {2019},
  doi           = {10.3847/1538-3881/ab089d},
  eprint        = {1804.08657},
  archivePrefix = {arXiv}
}""",
    "york2000sdss": """@article{york2000sdss,
  author        = {York, Donald G. and others},
  title         = {The Sloan Digital Sky Survey: Technical Summary},
  journal       = {The Astronomical Journal},
  volume        = {120},
  pages         = {1579},
  year          = {2000},
  doi           = {10.1086/301513}
}""",
    "lenscat": """@software{lenscat,
  title         = {lenscat: a public and community-contributed catalog of known strong gravitational lenses},
  url           = {https://github.com/lenscat/lenscat},
  note          = {Python package on PyPI}
}""",
}

# What every result depends on, whatever the index.
_ALWAYS = ["koblischke2025aionsearch", "radford2021clip", "chen2020simclr", "reimers2019sbert",
           "johnson2019faiss", "douze2024faiss", "astropy2022",
           # the shipped model is trained on Galaxy Zoo 2 (SDSS) images and votes
           "willett2013gz2", "york2000sdss"]


def _survey_keys(survey: str | None) -> list[str]:
    """Survey papers for a survey name recorded in an index manifest."""
    if not survey:
        return []
    s = survey.lower()
    keys = []
    if any(word in s for word in ("legacy", "decals", "desi", "dr10", "ls-")):
        keys.append("dey2019legacy")
    if "decals" in s or "galaxy zoo decals" in s or "gz decals" in s:
        keys.append("walmsley2022gzdecals")
    if "sdss" in s or "sloan" in s or "gz2" in s or "galaxy zoo 2" in s:
        keys += ["york2000sdss", "willett2013gz2"]
    return keys


def cite(results: Table | None = None) -> str:
    """Return BibTeX for this package, its methods and the data behind ``results``.

    Parameters
    ----------
    results : `~astropy.table.Table`, optional
        A table from `~astro_semsearch.semantic_search`, `~astro_semsearch.similar_to`
        or `~astro_semsearch.crossmatch`. The survey of its index (from
        ``results.meta["astro_semsearch"]["survey"]``) and a ``lenscat``
        cross-match add their references. Without it, the references of the
        shipped default index (DESI Legacy Surveys / Galaxy Zoo DECaLS) are
        included.

    Returns
    -------
    str
        BibTeX entries separated by blank lines, the package first.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table(meta={"astro_semsearch": {"survey": "SDSS DR7"}})
    >>> "york2000sdss" in cite(t)
    True
    """
    package = (resources.files("astro_semsearch") / "CITATION").read_text(encoding="utf-8").strip()
    keys = list(_ALWAYS)
    if results is None:
        keys += _survey_keys("DESI Legacy Imaging Surveys DR5 (Galaxy Zoo DECaLS)")
    else:
        if not isinstance(results, Table):
            raise InvalidTypeError(f"results must be an astropy Table from this package, got {type(results).__name__}")
        meta = meta_section(results)  # nested, or JSON text from a FITS file
        keys += _survey_keys(meta.get("survey"))
        xm = meta_section(results, "crossmatch")
        if str(xm.get("catalog", "")).lower() == "lenscat":
            keys.append("lenscat")
    seen = []
    for key in keys:
        if key not in seen:
            seen.append(key)
    return "\n\n".join([package, *(REFERENCES[k] for k in seen)]) + "\n"
