"""audit.html (reports/audit_page.py): the counts, the leakage banner, the limit, the placeholder, and that
no name from the data reaches the page raw. Pure Python: fake results, fake thumbnails."""

import re
from html.parser import HTMLParser

import pytest

from catdog_zoo.reports.audit_page import AUDIT_JSON, AUDIT_PAGE, clean, render_audit_page

PIXEL = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ=="
HOSTILE_CLASS = "<script>alert(1)</script>"
HOSTILE_FILE = 'x"onmouseover=alert(2) \u202egpj.exe\x1b]8;;http://x\x07.jpg'


class Page(HTMLParser):
    """The document's tags, with the section each sits in and each section's text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.section = [], {}, None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs["id"]
        self.tags.append((tag, attrs, self.section))

    def handle_endtag(self, tag):
        if tag == "section":
            self.section = None

    def handle_data(self, data):
        self.text[self.section] = self.text.get(self.section, "") + data

    def find(self, tag, cls=None, section=None):
        return [a for t, a, s in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())
                and (section is None or s == section)]


def _result(labels=2, groups=(True, False), off=(True, False, False), names=("cats", "dogs"), file="img"):
    cats, dogs = names
    return {
        "data": "/data/pets", "layout": "train/validation", "class_names": list(names), "num_images": 3025,
        "seed": 42,
        "split_counts": {"train": {cats: 1000, dogs: 1000}, "validation": {cats: 500, dogs: 500},
                         "test": {cats: 13, dogs: 12}},
        "label_issues": [{"path": f"train/{cats}/{file}-{i}.jpg", "split": "train", "given": cats,
                          "suggested": dogs, "score": 0.97 - i / 1000} for i in range(labels)],
        "duplicates": [{"paths": [f"train/{cats}/a{i}.jpg", f"{'validation' if across else 'train'}/{cats}/b{i}.jpg"],
                        "splits": ["train", "validation" if across else "train"], "similarity": 0.93,
                        "across_splits": across} for i, across in enumerate(groups)],
        "off_topic": [{"path": f"train/{dogs}/o{i}.jpg", "split": "train", "score": 0.62 - i / 10, "flagged": flag}
                      for i, flag in enumerate(off)],
        "notes": ["The test split has 25 images: one image is 4 points of accuracy."],
        "seconds": 12.3, "features": {"model": "mobilenet_v2", "engine": "tflite", "image_size": [224, 224]},
        "method": {"label_issues": "Score: confident disagreement with the folder"},
    }


def _render(result, **kwargs):
    called = []

    def thumbnail(path):
        called.append(path)
        return PIXEL
    return render_audit_page(result, thumbnail, **kwargs), called


def test_constants():
    assert (AUDIT_PAGE, AUDIT_JSON) == ("audit.html", "audit.json")


def test_each_kind_of_finding_is_counted_and_shown():
    out, called = _render(_result(labels=3, groups=(True, True, False), off=(True, False, True, False, False)))
    page = Page(out)
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    cards = re.findall(r'<div class="card[^"]*">([^<]+)<b>([^<]+)</b>([^<]*)</div>', out)
    assert cards == [("images", "3,025", ""), ("likely label errors", "3", ""),
                     ("duplicate groups", "3", "of which 2 across splits"), ("off-topic flagged", "2", "of 5 scored")]
    assert len(page.find("figure", "item", "label-issues")) == 3
    assert len(page.find("article", "item", "duplicates")) == 3
    assert len(page.find("img", section="duplicates")) == 6  # both copies of each group, side by side
    shown = [a["class"].split()[1] for a in page.find("figure", "item", "off-topic")]
    assert shown == ["flagged", "muted", "flagged", "muted", "muted"]
    assert page.text["off-topic"].count("not flagged") == 3
    assert "folder: cats -> looks like: dogs" in page.text["label-issues"]
    assert "score 0.970" in page.text["label-issues"] and "similarity 0.930" in page.text["duplicates"]
    assert "Score: confident disagreement with the folder. Showing all 3" in page.text["label-issues"]
    assert "how alike" in page.text["duplicates"]  # no method given: the page's own sentence
    assert "Warning: The test split has 25 images" in page.text[None]
    assert "<h1>Data audit: /data/pets</h1>" in out and "3,025 images in 2 classes (cats, dogs)" in out
    titles = [a["title"] for a in page.find("p", "path", "label-issues")]
    assert titles == [f"/data/pets/train/cats/img-{i}.jpg" for i in range(3)]
    assert called[:3] == [f"train/cats/img-{i}.jpg" for i in range(3)]  # paths handed over as given
    assert len(called) == 3 + 6 + 5


def test_headings_in_order_and_every_image_has_alt_text():
    out, _ = _render(_result())
    levels = [int(t[1]) for t, _, _ in Page(out).tags if re.fullmatch(r"h[1-6]", t)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
    images = Page(out).find("img")
    assert images and all(a.get("alt", "").strip() for a in images)


def test_the_leakage_banner_only_on_groups_across_splits():
    out, _ = _render(_result(groups=(False, True, False)))
    page = Page(out)
    groups = page.find("article", "item", "duplicates")
    assert [("across" in g["class"].split()) for g in groups] == [False, True, False]
    assert out.count("LEAKAGE") == 1
    assert "LEAKAGE: this group spans train and validation" in page.text["duplicates"]
    banner = out.index("LEAKAGE")
    assert out.rindex("<article", 0, banner) == out.index("<article", out.index("<article") + 1)  # in the 2nd
    out, _ = _render(_result(groups=(False, False)))
    assert "LEAKAGE" not in out and "of which 0 across splits" in out


def test_the_limit_cuts_each_section_and_says_how_many_more():
    out, called = _render(_result(labels=7, groups=(True,) * 4, off=(True,) * 3), limit=5)
    page = Page(out)
    assert len(page.find("figure", "item", "label-issues")) == 5
    assert "Showing the 5 most suspicious of 7." in page.text["label-issues"]
    assert "... and 2 more in audit.json" in page.text["label-issues"]
    assert len(page.find("article", "item", "duplicates")) == 4 and "more in audit.json" not in page.text["duplicates"]
    assert "more in audit.json" not in page.text["off-topic"]
    assert "train/cats/img-5.jpg" not in out and len(called) == 5 + 8 + 3  # thumbnails only for what is shown
    out, _ = _render(_result(labels=150))
    assert len(Page(out).find("figure", "item", "label-issues")) == 100 and "... and 50 more in audit.json" in out


def test_no_thumbnail_renders_the_placeholder():
    def thumbnail(path):
        return None if path.endswith("img-0.jpg") else "https://example.com/x.jpg" if "a0" in path else PIXEL
    out = render_audit_page(_result(labels=2), thumbnail)
    page = Page(out)
    boxes = page.find("div", "noimg")
    assert len(boxes) == 2  # None, and a URL that is not a data URI
    assert all(b["role"] == "img" and "no preview" in b["aria-label"] for b in boxes)
    assert out.count(">no preview</div>") == 2 and "example.com" not in out
    assert len(page.find("img")) == 1 + 3 + 3


def test_hostile_names_never_reach_the_page_raw():
    result = _result(names=(HOSTILE_CLASS, "dogs\nnew line"), file=HOSTILE_FILE)
    result["notes"] = [f"class {HOSTILE_CLASS} has 3 images \x1b[31mred\x1b[0m \u2066isolated\u2069"]
    result["duplicates"][0]["splits"] = ["train", "<b>val</b>"]
    out, _ = _render(result)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out  # the name is there, escaped...
    assert "<script" not in out.lower() and "alert(1)</script>" not in out  # ...and never as a tag
    assert "x&quot;onmouseover=alert(2)" in out and 'x"onmouseover' not in out
    assert "LEAKAGE: this group spans train and &lt;b&gt;val&lt;/b&gt;" in out
    for bad in ("\u202e", "\u2066", "\u2069", "\x1b", "\x07"):
        assert bad not in out, repr(bad)
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out)
    # shown as the terminal shows them (util/names.py): visible, never obeyed
    assert "\\u202egpj.exe\\x1b]8;;http://x\\x07.jpg" in out and "\\x1b[31mred\\x1b[0m \\u2066isolated\\u2069" in out
    assert "dogs\\x0anew line" in out
    page = Page(out)
    for tag, attrs, _ in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    titles = [a["title"] for a in page.find("p", "path", "label-issues")]
    assert titles[0] == (f"/data/pets/train/{HOSTILE_CLASS}/x\"onmouseover=alert(2) \\u202egpj.exe\\x1b]8;;http://x"
                         "\\x07.jpg-0.jpg")


def test_clean_is_the_terminal_form_of_a_name():
    """audit.html shows a name as the terminal does (util/names.py): what acts is made visible, not removed, so
    a reviewer sees that the file name carries an escape sequence."""
    assert clean("a\x1b]8;;http://x\x07b\x1b]8;;\x1b\\c") == "a\\x1b]8;;http://x\\x07b\\x1b]8;;\\x1b\\c"
    assert clean("\x1b[1;31mred\x1b[0m\x9b2Jx") == "\\x1b[1;31mred\\x1b[0m\\x9b2Jx"
    assert clean("tab\there\r\nnext\x00\x7f\x85") == "tab\\x09here\\x0d\\x0anext\\x00\\x7f\\x85"
    assert clean("\u202aa\u202ee\u2066f\u2069") == "\\u202aa\\u202ee\\u2066f\\u2069"
    assert clean("bad-\udcff-bytes") == "bad-\\xff-bytes"
    assert clean(None) == "" and clean(0.5) == "0.5"


def test_self_contained_no_remote_resources():
    result = _result()
    result["data"] = "/home/u/http-mirror"
    out, _ = _render(result)
    assert "http://" not in out and "https://" not in out and "//" not in out.replace("://", "")
    for tag, attrs, _ in Page(out).tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith(("data:image/", "#")), (tag, attrs)
    assert "<script" not in out and "@import" not in out and "url(" not in out
    assert "default-src 'none'" in out and 'name="viewport"' in out
    assert "minmax(" in out and "auto-fill" in out


def test_an_empty_audit_renders():
    out = render_audit_page({"data": "d", "class_names": [], "num_images": 0}, lambda p: pytest.fail(p))
    page = Page(out)
    assert page.text["label-issues"].count("None found.") == 1 and not page.find("figure")
    assert "No notes" in out
