"""The tests that docs/reliability.rst cites as evidence exist (a renamed test must not leave a dead citation)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_cited_test_exists():
    text = (ROOT / "docs" / "reliability.rst").read_text(encoding="utf-8")
    cited = re.findall(r"``(test_\w+\.py)::(\w+)``", text)
    assert len(cited) > 20
    missing = [f"{f}::{t}" for f, t in cited
               if not re.search(rf"^def {t}\(", (ROOT / "tests" / f).read_text(encoding="utf-8"), re.M)]
    assert not missing, f"docs/reliability.rst cites tests that do not exist: {missing}"
