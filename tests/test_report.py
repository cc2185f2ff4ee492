"""The HTML report (report.write_html), its astropy format, the --html CLI option, and a real browser."""
from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import legacy_server as _server
import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from fakes import MeanColourModel
from PIL import Image

import astro_semsearch.thumbnails  # noqa: F401  (imports astroquery, which reroutes warnings, before any test)
from astro_semsearch.report import FORMAT, write_html
from astro_semsearch.search import viewer_urls

legacy_server = _server.legacy_server  # the fixture (tests/legacy_server.py)

COLOURS = [(230, 25, 25), (25, 200, 40), (30, 60, 230), (240, 220, 20)]
EVIL = "<script>document.title='pwned'</script>"


def _solid(rgb, n=40):
    img = np.zeros((n, n, 3), np.uint8)
    img[...] = rgb
    return img


def _textured(rgb):
    """A colour with a faint checker: builds refuse flat-colour images (they carry no structure)."""
    img = _solid(rgb).astype(np.int16)
    img[::2, ::2] += np.where(np.asarray(rgb) < 255, 1, -1)
    return img.astype(np.uint8)


def _hits(ids=("J1", EVIL, "J3", "J4")):
    n = len(ids)
    t = Table()
    t["rank"] = np.arange(1, n + 1)
    t["object_id"] = list(ids)
    t["ra"] = Table.Column(np.linspace(150.0, 150.3, n), unit=u.deg)
    t["dec"] = Table.Column(np.linspace(-2.0, 2.0, n), unit=u.deg)
    t["score"] = np.linspace(0.5, 0.2, n)
    t["rerank_score"] = np.ma.masked_array(np.linspace(0.9, 0.6, n), mask=[False] * (n - 1) + [True])
    t["ring"] = np.arange(n) % 2
    t["viewer_url"] = viewer_urls(t["ra"], t["dec"])
    t.meta["astro_semsearch"] = {
        "function": "semantic_search", "query": "ring <i>galaxy</i>", "k": n,
        "model": {"name": "galclip-v1", "sha256": "ab" * 32},
        "index": {"name": "decals-dr5-rings", "sha256": "cd" * 32, "count": 236, "path": None},
        "rerank": {"name": "feedback", "parameters": {"alpha": 1.0}, "top_n": n, "seconds": 0.01},
        "time": "2026-11-23T12:00:00+00:00", "package_version": "9.9.9",
    }
    return t


class _Page(HTMLParser):
    """Collects the parts of the report the tests look at."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cards, self.links, self.imgs, self.scripts, self.text = [], [], [], [], []
        self._stack, self._card, self._script = [], None, None
        self.dt_dd: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "article":
            self._card = {"attrs": a, "text": [], "links": [], "img": None}
            self.cards.append(self._card)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
            if self._card is not None:
                self._card["links"].append(a["href"])
        elif tag == "img":
            self.imgs.append(a)
            if self._card is not None:
                self._card["img"] = a
        elif tag == "script":
            self._script = {"attrs": a, "body": ""}
            self.scripts.append(self._script)

    def handle_endtag(self, tag):
        if tag == "article":
            self._card = None
        elif tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script["body"] += data
            return
        self.text.append(data)
        if self._card is not None:
            self._card["text"].append(data)


def _parse(path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _decode(data_uri: str) -> np.ndarray:
    head, _, b64 = data_uri.partition(",")
    assert head in ("data:image/jpeg;base64", "data:image/png;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64, validate=True))).convert("RGB"))


def test_report_cards_links_images_and_provenance(tmp_path):
    hits = _hits()
    ids = list(hits["object_id"])
    images = {oid: _solid(c) for oid, c in zip(ids[:3], COLOURS)}  # J4 has no image
    out = tmp_path / "hits.html"
    with pytest.warns(UserWarning, match="J4"):
        assert write_html(hits, out, images=images, source=False, thumb_size=64) == out
    page = _parse(out)

    assert len(page.cards) == 4
    assert [c["attrs"]["data-object-id"] for c in page.cards] == ids
    assert [c["attrs"]["data-rank"] for c in page.cards] == ["1", "2", "3", "4"]
    for card, url in zip(page.cards, hits["viewer_url"]):
        assert card["links"] and set(card["links"]) == {str(url)}
    # Embedded thumbnails decode to the test images; the hit without one has none.
    for card, colour in zip(page.cards[:3], COLOURS):
        img = _decode(card["img"]["src"])
        assert img.shape == (64, 64, 3) and np.abs(img.astype(int) - colour).max() <= 8
    assert page.cards[3]["img"] is None and "no image" in "".join(page.cards[3]["text"])

    text = "".join(page.cards[0]["text"])
    assert "#1" in text and "J1" in text and "0.5000" in text and "0.9000" in text and "RA 150.000000" in text
    assert "rerank" not in "".join(page.cards[3]["text"]).replace("rerank_score", "")  # masked there
    assert "ring" in text  # a catalogue column

    # The hostile object_id is text, not markup: the only <script> is the JSON block.
    assert [s["attrs"].get("type") for s in page.scripts] == ["application/json"]
    assert EVIL in "".join(page.cards[1]["text"])
    raw = out.read_text(encoding="utf-8")
    assert EVIL not in raw and "&lt;script&gt;" in raw
    # Provenance: query (escaped), model + sha256, index + sha256, re-ranker, time, version.
    alltext = "".join(page.text)
    for s in ("ring <i>galaxy</i>", "galclip-v1", "ab" * 32, "decals-dr5-rings", "cd" * 32, "236",
              "feedback", "2026-11-23T12:00:00", "9.9.9"):
        assert s in alltext, s
    meta = json.loads(page.scripts[0]["body"])
    assert meta == json.loads(json.dumps(hits.meta["astro_semsearch"]))
    # Nothing remote is loaded: images are data: URIs and the page forbids everything else.
    assert all(i["src"].startswith("data:") for i in page.imgs)
    assert "default-src 'none'" in raw


def test_report_refuses_to_overwrite_and_writes_atomically(tmp_path):
    hits = _hits(("A", "B"))
    images = [_solid(COLOURS[0]), _solid(COLOURS[1])]
    out = tmp_path / "hits.html"
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_html(hits, out, images=images)
    assert out.read_text() == "keep me"
    write_html(hits, out, images=images, overwrite=True, image_format="png")
    assert len(_parse(out).cards) == 2 and _parse(out).imgs[0]["src"].startswith("data:image/png;base64,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hits.html"]  # no temporary files left
    with pytest.raises(ValueError, match="image_format"):
        write_html(hits, tmp_path / "x.html", images=images, image_format="gif")


def test_unsafe_links_are_not_links(tmp_path):
    hits = _hits(("A", "B"))
    hits["viewer_url"] = ["javascript:alert(1)", "https://example.org/?a=1&b=<2>"]
    write_html(hits, tmp_path / "h.html", images=[_solid(COLOURS[0]), _solid(COLOURS[1])])
    page = _parse(tmp_path / "h.html")
    assert page.cards[0]["links"] == [] and set(page.cards[1]["links"]) == {"https://example.org/?a=1&b=<2>"}


def test_astropy_unified_io_format_and_file_objects(tmp_path):
    hits = _hits(("A", "B"))
    images = [_solid(COLOURS[2]), _solid(COLOURS[3])]
    out = tmp_path / "hits.html"
    hits.write(out, format=FORMAT, images=images)
    assert len(_parse(out).cards) == 2
    with pytest.raises(FileExistsError):
        hits.write(out, format="semsearch-html", images=images)
    hits[:1].write(out, format="semsearch-html", images=images[:1], overwrite=True)
    assert len(_parse(out).cards) == 1
    buf = io.StringIO()
    assert write_html(hits, buf, images=images) is None
    assert buf.getvalue().count("<article") == 2
    # A table re-read from ECSV (plain Table, meta kept) writes the same report.
    hits.write(tmp_path / "hits.ecsv")
    again = Table.read(tmp_path / "hits.ecsv")
    again.write(tmp_path / "again.html", format="semsearch-html", images=images)
    assert "galclip-v1" in (tmp_path / "again.html").read_text()


def test_report_with_fetched_cutouts(legacy_server, tmp_path):
    hits = _hits(("A", "B"))
    del hits["viewer_url"]  # made from RA/Dec when missing
    write_html(hits, tmp_path / "h.html", thumb_size=48)
    assert legacy_server.counts["/jpeg-cutout"] == 2
    page = _parse(tmp_path / "h.html")
    for card, ra, dec in zip(page.cards, hits["ra"], hits["dec"]):
        body = _server._to_jpeg(_server.synthetic_cutout(float(ra), float(dec), 48))
        expected = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)
        assert np.abs(_decode(card["img"]["src"]).astype(int) - expected).mean() < 3  # re-encoded JPEG
        assert str(viewer_urls([ra], [dec])[0]) in card["links"]


# --------------------------------------------------------------------------- command line


@pytest.fixture
def local_index(tmp_path):
    from astro_semsearch import build_index

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cat = Table({"object_id": [f"G{i}" for i in range(4)], "ra": [10.0, 10.5, 11.0, 11.5],
                 "dec": [1.0, 1.0, 1.0, 1.0], "file": [f"g{i}.png" for i in range(4)]})
    for i, c in enumerate(COLOURS):
        Image.fromarray(_textured(c)).save(imgs / f"g{i}.png")
    build_index(cat, out=tmp_path / "idx", images=imgs, model=MeanColourModel(), progress=False)
    return tmp_path / "idx"


def test_cli_html_option(local_index, tmp_path, capsys):
    from astro_semsearch.cli import build_parser, main

    assert build_parser().parse_args(["search", "ring", "--html", "a.html"]).html == "a.html"
    out = tmp_path / "report.html"
    assert main(["similar", "G0", "-k", "3", "--index", str(local_index), "--html", str(out)]) == 0
    assert f"wrote an HTML report of 3 hits to {out}" in capsys.readouterr().out
    page = _parse(out)
    assert len(page.cards) == 3
    for card in page.cards:  # thumbnails from the index's own image directory
        i = int(card["attrs"]["data-object-id"][1:])
        assert np.abs(_decode(card["img"]["src"]).astype(int) - COLOURS[i]).max() <= 8
    assert "similar_to" in "".join(page.text) and "G0" in "".join(page.text)

    # Refused without --overwrite, before the -o table is written.
    table_out = tmp_path / "hits.ecsv"
    assert main(["similar", "G0", "-k", "2", "--index", str(local_index), "--html", str(out),
                 "-o", str(table_out)]) == 2
    assert "already exists" in capsys.readouterr().err and not table_out.exists()
    # --images overrides the index's images.
    other = tmp_path / "other"
    other.mkdir()
    for i in range(4):
        Image.fromarray(_solid((10, 10, 10))).save(other / f"G{i}.jpg")
    assert main(["similar", "G0", "-k", "2", "--index", str(local_index), "--html", str(out),
                 "--images", str(other), "--overwrite"]) == 0
    assert all(_decode(c["img"]["src"]).max() < 30 for c in _parse(out).cards)


# --------------------------------------------------------------------------- a real browser
def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(tmp_path, html_path, *args):
    exe = _chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, html_path.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    hits = _hits()
    ids = list(hits["object_id"])
    images = {oid: _solid(c) for oid, c in zip(ids, COLOURS)}
    out = tmp_path / "hits.html"
    write_html(hits, out, images=images, thumb_size=120)

    shot = tmp_path / "shot.png"
    r = _browser(tmp_path, out, f"--screenshot={shot}", "--window-size=1200,900")
    assert shot.is_file(), r.stderr[-2000:]
    png = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert png.shape[:2] == (900, 1200)
    # Every thumbnail is drawn: each colour covers about a 120 x 120 square of the screenshot.
    for colour in COLOURS:
        n = int((np.abs(png - colour).max(axis=-1) <= 12).sum())
        assert 0.8 * 120 * 120 <= n <= 1.3 * 120 * 120, (colour, n)

    dom = _browser(tmp_path, out, "--dump-dom").stdout
    page = _Page()
    page.feed(dom)
    assert len(page.cards) == 4
    # The script in the object_id never ran: the title is still ours.
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "pwned" not in title and "ring" in title


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_report_file_follows_the_umask(tmp_path, umask, mode):
    """Reports were created -rw------- whatever the umask (mkstemp); they follow it like any file now."""
    import os
    import stat

    hits = Table({"object_id": ["a"], "ra": [150.0], "dec": [2.0], "score": [0.9]})
    old = os.umask(umask)
    try:
        write_html(hits, tmp_path / "r.html", images={"a": np.random.default_rng(0).integers(0, 255, (16, 16, 3),
                                                                                             dtype=np.uint8)})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.html").stat().st_mode) == mode
