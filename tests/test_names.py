"""A name from disk is untrusted text, everywhere it is shown or written (trust nothing, round 3, principle 1).

Class folder, file, run folder, model and plugin names hold escape sequences (ESC, OSC), control characters,
line breaks, carriage returns, bidi overrides, ``|`` and HTML, bytes that are not UTF-8 and ``$...$``. The
decision of how each medium shows them is ``catdog_zoo/util/names.py``; these tests build such names for real
(folders, files, a run folder, an installed plugin) and walk every command that shows or writes one.
docs/trust-round3-names.md has the cases, before and after.
"""

import csv
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_run, install_dist, zoo_subprocess
from frozen_plugin import frozen_source
from imagefactory import write_images

from catdog_zoo.plugins import reset_zoo
from catdog_zoo.util import names
from catdog_zoo.util.files import csv_cell

OSC = "\x1b]0;pwned\x07cats"  # retitles a terminal, even when the output is piped to less -R
NEWLINE = "bird\nFAKE CLASS LINE"
RLO = "ca\u202ets"  # shows as "cast" reversed
PIPE = "dogs|<img src=x onerror=alert(1)>$\\cmd$"  # Markdown cell, HTML, mathtext
MARKUP = "# `cats` & <u>it"
FILES = ["a\nFAKE LINE.jpg", os.fsdecode(b"caf\xe9.jpg"), "\x1b[31mred.jpg", "t\tab.jpg", "bidi\u202egpj.jpg",
         "=cmd()+x.jpg", "osc\x1b]8;;evil\x07link.jpg", "cr\rOVER.jpg"]
EVIL = "evil\x1b]0;model\x07|<b>m</b>$x$"  # a plugin's model name
EVIL_DIR = EVIL.replace("/", "_")  # how zoo names its run folder

# A frozen-backbone model (its features cached) whose name, summary and tag are hostile.
PLUGIN = frozen_source(EVIL, size=32, summary="sum\nFAKE SUMMARY \u202e|x", tags=("t\x1b[2J",), epochs=1,
                       batch_size=8)
BROKEN = 'raise RuntimeError("boom\\x1b]0;err\\x07\\nFAKE PLUGIN LINE")\n'

BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # tab and newline separate fields


def assert_shown_safely(text: str, where: str) -> None:
    """Nothing in ``text`` acts on a terminal, reorders a line, or starts a line a name forged."""
    assert not RAW.search(text), f"{where}: raw {RAW.search(text).group()!r} in {text[-400:]!r}"
    assert not BIDI.search(text), f"{where}: raw bidi control in {text[-400:]!r}"
    forged = [line for line in text.splitlines() if line.startswith(("FAKE", "OVER"))]
    assert not forged, f"{where}: a name started a line of its own: {forged}"


def run(*args, code=0):
    """``catdog-zoo ARGS`` in this process; stdout and stderr checked, the exit status too."""
    reset_zoo()
    result = cli_run(*args, ok=False)
    where = " ".join(map(str, args[:3]))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"{where}: exit {result.exit_code}\n{result.stderr[-2000:]}"
    assert_shown_safely(result.stdout, f"{where} (stdout)")
    assert_shown_safely(result.stderr, f"{where} (stderr)")
    return result


def as_json(result):
    data = json.loads(result.stdout)
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # no lone surrogate anywhere in it
    return data


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def dataset(root: Path, classes, hostile_files=True) -> Path:
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        for split, count in (("train", 8), ("validation", 6)):
            write_images(root / split / name, label, count, 32, rng)
    if hostile_files:
        folder = root / "train" / classes[0]
        for i, name in enumerate(FILES):
            os.rename(folder / f"img_{i:03d}.jpg", folder / name)
    return root


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Folders and an installed plugin full of hostile names, and the runs made from them."""
    work = tmp_path_factory.mktemp("names")
    site = work / "site"
    install_dist(site, "evil-plugin", "0.1", {"evil\x1b]0;ep\x07": "evil_names_mod", "broken": "broken_names_mod"},
                 {"evil_names_mod": PLUGIN, "broken_names_mod": BROKEN})
    shown = dataset(work / "shown", [OSC, NEWLINE, RLO, PIPE])  # train refuses three of these classes
    trained = dataset(work / "trained", [PIPE, MARKUP])
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        reset_zoo()
        yield {"work": work, "site": site, "shown": shown, "data": trained, "run": work / "run",
               "zoo": work / "zoo", "evil_run": work / "zoo" / EVIL_DIR}
    for module in ("evil_names_mod", "broken_names_mod"):
        sys.modules.pop(module, None)
    reset_zoo()


# --- the decision ---------------------------------------------------------------------------------------------

def test_terminal_shows_what_acts_and_nothing_else():
    assert names.terminal("cats") == "cats" and names.terminal("chats noirs é 猫 🐈") == "chats noirs é 猫 🐈"
    assert names.terminal(OSC) == "\\x1b]0;pwned\\x07cats"
    assert names.terminal("a\nb\rc\td\x00\x7f\x85\x9b") == "a\\x0ab\\x0dc\\x09d\\x00\\x7f\\x85\\x9b"
    assert names.terminal(RLO + "\u2066\u2069\u200e\u200f\u061c") == "ca\\u202ets\\u2066\\u2069\\u200e\\u200f\\u061c"
    assert names.terminal("x\u2028y\u2029") == "x\\u2028y\\u2029"
    assert names.terminal(os.fsdecode(b"caf\xe9")) == "caf\\xe9"  # a byte that is not UTF-8
    assert names.terminal("lone \ud800") == "lone \\ud800"  # from JSON, not from a file name
    assert names.terminal(None) == "" and names.terminal(Path("/a/b")) == "/a/b" and names.terminal(3) == "3"
    for text in (OSC, NEWLINE, RLO, PIPE, *FILES):
        once = names.terminal(text)
        assert names.terminal(once) == once and names.lines(once) == once  # idempotent: guards can repeat
        assert not RAW.search(once) and not BIDI.search(once) and "\n" not in once and "\t" not in once
    assert names.lines("a\nb\tc\x1b\r") == "a\nb\tc\\x1b\\x0d"


def test_markdown_html_json_csv_and_plot_build_on_terminal():
    assert names.markdown(PIPE) == "dogs\\|&lt;img src=x onerror=alert(1)&gt;\\$\\\\cmd\\$"
    assert names.markdown(MARKUP) == "\\# \\`cats\\` &amp; &lt;u&gt;it"
    assert names.markdown("a_b*[c](d)~") == "a\\_b\\*\\[c\\](d)\\~"
    assert names.markdown(NEWLINE) == "bird\\\\x0aFAKE CLASS LINE"  # the escape itself shown, not read
    assert names.html('<b a="1">' + OSC) == "&lt;b a=&quot;1&quot;&gt;\\x1b]0;pwned\\x07cats"
    surrogate = os.fsdecode(b"caf\xe9")
    assert names.json_safe({surrogate: [surrogate, 1.5, None, (OSC,)]}) == {"caf\\xe9": ["caf\\xe9", 1.5, None, [OSC]]}
    assert names.plot(PIPE) == PIPE  # $ kept: figures are drawn with parse_math=False
    assert csv_cell("=cmd()") == "'=cmd()" and csv_cell("a\nb") == "a\\x0ab" and csv_cell("\tx") == "\\x09x"
    assert csv_cell("-0.25") == "-0.25" and csv_cell(0.5) == 0.5


@pytest.mark.parametrize("name, kind", [
    ("cats\nFAKE", "a line break"), ("ca\u2028ts", "a line break"), ("cats\r", "a carriage return"),
    ("\x1b]0;t\x07cats", "a control character"), ("ca\x7fts", "a control character"),
    (RLO, "a bidirectional-text control"), (os.fsdecode(b"chats\xe9"), "a byte that is not UTF-8")])
def test_a_class_name_labels_txt_cannot_hold(name, kind):
    assert kind in names.label_problem(name)
    with pytest.raises(Exception, match="cannot be written to labels.txt"):
        names.labels_file(["dogs", name], "runs/x")


def test_names_labels_txt_can_hold():
    for name in (PIPE, MARKUP, "chats é", "_hidden", "=cmd()", "a\\x0ab", " spaced "):
        assert names.label_problem(name) is None
    assert names.labels_file([PIPE, MARKUP], "r") == f"{PIPE}\n{MARKUP}\n"


# --- every command ----------------------------------------------------------------------------------------------

def test_data_commands_show_hostile_names_escaped_and_say_what_train_refuses(hostile):
    shown, work = hostile["shown"], hostile["work"]
    stats = run("data", "stats", "--data", shown)
    assert "\\x1b]0;pwned\\x07cats" in stats.stdout and "bird\\x0aFAKE CLASS LINE" in stats.stdout
    assert "ca\\u202ets" in stats.stdout and PIPE in stats.stdout
    assert stats.stderr.count("Warning: train refuses class folder") == 3
    refused = as_json(run("data", "stats", "--data", shown, "--json"))["refused_by_train"]
    assert sorted(r["problem"] for r in refused) == sorted(
        names.label_problem(n) for n in (OSC, NEWLINE, RLO))
    check = run("data", "check", "--data", shown, code=1)  # refused class folders are errors
    header = check.stdout.splitlines()[0]
    assert "classes \\x1b]0;pwned\\x07cats, bird\\x0aFAKE CLASS LINE, ca\\u202ets" in header
    assert len([line for line in check.stdout.splitlines() if "train refuses this class folder" in line]) == 3
    assert as_json(run("data", "check", "--data", shown, "--json", code=1))["class_names"][0] == OSC
    ok = run("data", "check", "--data", hostile["data"])
    assert "a\\x0aFAKE LINE.jpg" not in ok.stdout  # usable files are not problems: nothing listed, nothing forged
    run("data", "show", "--data", shown, "--out", work / "grid.png")  # $\cmd$ as a title: drawn, not parsed
    run("augment-preview", "augmentation", "--data", shown, "--out", work / "aug.png", "--copies", 2)
    assert is_png(work / "grid.png") and is_png(work / "aug.png")


def test_data_stats_in_a_real_process(hostile):
    """The same through a pipe (OSC passed click's own stripping of CSI styles when piped)."""
    result = zoo_subprocess("data", "stats", "--data", hostile["shown"])
    assert_shown_safely(result.stdout, "subprocess data stats")
    assert "\\x1b]0;pwned\\x07cats" in result.stdout


@pytest.mark.parametrize("name", [NEWLINE, "cats\r", OSC, RLO, os.fsdecode(b"chats\xe9"), "ca\u2028ts"])
def test_train_refuses_a_class_folder_labels_txt_cannot_hold(tmp_path, monkeypatch, name):
    data = dataset(tmp_path / "data", [name, "dogs"], hostile_files=False)
    result = run("train", "baseline", "--data", data, "--epochs", 1, "--image-size", 32, "--run-dir",
                 tmp_path / "run", code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: class folder ") and "rename the folder" in lines[0]
    assert names.terminal(data / "train" / name) in lines[0] and names.label_problem(name) in lines[0]
    assert not (tmp_path / "run").exists()  # refused before any run folder is made
    runs = tmp_path / "runs"
    monkeypatch.chdir(tmp_path)  # without --run-dir: nothing under runs/ either
    run("train", "baseline", "--data", data, "--epochs", 1, "--image-size", 32, code=2)
    assert not runs.exists() or not any(runs.iterdir())


def test_every_command_on_a_run_shows_names_escaped(hostile, tmp_path):
    data, run_dir = hostile["data"], hostile["run"]
    train = run("train", "baseline", "--data", data, "--epochs", 1, "--image-size", 32, "--batch-size", 8,
                "--run-dir", run_dir)
    assert train.stdout.splitlines()[0].endswith(f"images, classes {MARKUP}, {PIPE}")  # the banner
    evil = run("train", EVIL, "--data", data, "--epochs", 1, "--batch-size", 8, "--run-dir", hostile["evil_run"])
    assert evil.stdout.startswith("Training evil\\x1b]0;model\\x07|<b>m</b>$x$ on")
    # the run's own files
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert_shown_safely(html, "report.html")
    assert "dogs|&lt;img src=x onerror=alert(1)&gt;$\\cmd$" in html and "<img src=x" not in html
    assert "# `cats` &amp; &lt;u&gt;it" in html
    for figure in ("learning_curves.png", "confusion_matrix.png", "errors.png", "calibration.png", "pr_roc.png"):
        assert is_png(run_dir / figure), figure
        assert is_png(hostile["evil_run"] / figure), figure
    assert_shown_safely((hostile["evil_run"] / "report.html").read_text(encoding="utf-8"), "evil report.html")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["class_names"] == [MARKUP, PIPE]  # faithful where it can be (folders in sorted order)

    # evaluate
    evaluated = run("evaluate", run_dir)
    assert f"  {PIPE}: precision" in evaluated.stdout and f"  {MARKUP}: precision" in evaluated.stdout
    assert set(as_json(run("evaluate", run_dir, "--json"))["per_class"]) == {PIPE, MARKUP}
    run("evaluate", hostile["evil_run"])

    # predict: one line per image, the tab-separated fields intact
    images = sorted(p for p in (data / "train").rglob("*") if p.is_file())
    predicted = run("predict", run_dir, data / "train", "--out", tmp_path / "p.csv")
    rows = predicted.stdout.splitlines()
    assert len(rows) == len(images) == 16 and all(len(row.split("\t")) == 3 for row in rows)
    assert any(row.endswith("/a\\x0aFAKE LINE.jpg") for row in rows) and any("caf\\xe9.jpg" in r for r in rows)
    assert any(row.endswith("/cr\\x0dOVER.jpg") for row in rows) and any(r.endswith("/t\\x09ab.jpg") for r in rows)
    listed = as_json(run("predict", run_dir, data / "train", "--json"))
    assert {Path(p["path"]).name for p in listed} >= {"a\nFAKE LINE.jpg", "caf\\xe9.jpg", "bidi\u202egpj.jpg"}
    text = (tmp_path / "p.csv").read_text(encoding="utf-8")
    assert_shown_safely(text.replace("\r\n", "\n"), "predictions.csv")
    table = list(csv.reader(io.StringIO(text)))
    assert len(table) == 17 and table[0][3:5] == [f"p_{MARKUP}", f"p_{PIPE}"]
    assert any(r[0].endswith("/=cmd()+x.jpg") for r in table)

    # export: labels.txt holds the class names, one per line, faithfully
    run("export", run_dir, "--format", "saved_model", "--out", tmp_path / "serving")
    run("export", run_dir, "--format", "tflite", "--out", tmp_path / "m.tflite")
    for labels in (tmp_path / "serving" / "1" / "labels.txt", tmp_path / "m.tflite.labels.txt"):
        assert labels.read_text(encoding="utf-8").split("\n") == [MARKUP, PIPE, ""]
    run("export", hostile["evil_run"], "--format", "tflite", "--out", tmp_path / "evil.tflite")


def test_compare_and_zoo_with_hostile_run_folders_and_model_names(hostile, tmp_path):
    run_dir = hostile["run"]
    if not (run_dir / "metrics.json").is_file():
        pytest.skip("needs the runs of test_every_command_on_a_run_shows_names_escaped")
    folder = tmp_path / "runs" / "run\x1b]0;r\x07\u202e|x\nFAKE RUN"
    shutil.copytree(run_dir, folder, ignore=shutil.ignore_patterns("checkpoints", "export"))
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**metrics, "model": "mod\x1b]0;m\x07|<script>x</script>\n$y$"}))
    lone = tmp_path / "runs" / "surrogate"
    shutil.copytree(run_dir, lone, ignore=shutil.ignore_patterns("checkpoints", "export"))
    (lone / "metrics.json").write_text(json.dumps({**metrics, "model": "bad\ud800"}))  # valid JSON, lone surrogate
    runs = [run_dir, folder, lone, hostile["evil_run"]]

    text = run("compare", *runs)
    assert "mod\\x1b]0;m\\x07|<script>x</script>\\x0a$y$" in text.stdout and "bad\\ud800" in text.stdout
    assert "run\\x1b]0;r\\x07\\u202e|x\\x0aFAKE RUN" in text.stdout + text.stderr
    assert len(text.stdout.strip().splitlines()) == 1 + len(runs)
    markdown = run("compare", *runs, "--markdown").stdout.strip().splitlines()
    assert len(markdown) == 2 + len(runs)
    for line in markdown:  # 9 columns: 10 pipes that are not escaped
        assert len(re.findall(r"(?<!\\)\|", line)) == 10, line
    assert "<" not in "\n".join(markdown) and "&lt;script&gt;" in "\n".join(markdown)
    rows = as_json(run("compare", *runs, "--json"))
    assert {r["model"] for r in rows} >= {"bad\\ud800", EVIL, "baseline"}
    run("compare", *runs, "--plot", tmp_path / "curves.png")
    assert is_png(tmp_path / "curves.png")

    zoo = run("zoo", "evil*", "--data", hostile["data"], "--epochs", 1, "--runs-dir", hostile["zoo"], "--json")
    assert "already finished" in zoo.stderr and as_json(zoo)[0]["model"] == EVIL


def test_lr_find_and_audit_with_hostile_names(hostile, tmp_path):
    data = hostile["data"]
    found = run("lr-find", "baseline", "--data", data, "--image-size", 32, "--steps", 5, "--out", tmp_path / "lr.png")
    assert "Plot:" in found.stdout and is_png(tmp_path / "lr.png")
    run("lr-find", EVIL, "--data", data, "--steps", 5, "--out", tmp_path / "lr-evil.png", "-q")
    assert is_png(tmp_path / "lr-evil.png")
    summary = run("audit", "--data", data, "--model", EVIL, "--out", tmp_path / "audit", "-q")
    assert f"({MARKUP}, {PIPE})" in summary.stdout
    page = (tmp_path / "audit" / "audit.html").read_text(encoding="utf-8")
    assert_shown_safely(page, "audit.html")
    assert "<img src=x" not in page and "dogs|&lt;img src=x onerror=alert(1)&gt;" in page
    stored = json.loads((tmp_path / "audit" / "audit.json").read_text(encoding="utf-8"))
    json.dumps(stored, ensure_ascii=False).encode("utf-8")
    printed = as_json(run("audit", "--data", data, "--model", EVIL, "--out", tmp_path / "audit2", "-q", "--json"))
    assert printed["class_names"] == [MARKUP, PIPE]


def test_models_plugins_and_info_with_a_hostile_plugin(hostile, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # one row per model, as a pipe gets it (not wrapped to a width)
    listed = run("models", "--no-params")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("evil"))
    assert row.startswith("evil\\x1b]0;model\\x07|<b>m</b>$x$") and row.endswith("sum\\x0aFAKE SUMMARY \\u202e|x")
    assert "t\\x1b[2J" in row and "plugin(s) broken failed to load" in listed.stderr
    assert EVIL in {m["name"] for m in as_json(run("models", "--json", "--no-params"))}
    plugins = run("plugins")
    assert "evil\\x1b]0;ep\\x07 (evil-plugin 0.1) [ok]" in plugins.stdout
    assert "  error: failed to load: RuntimeError: boom\\x1b]0;err\\x07\\x0aFAKE PLUGIN LINE" in plugins.stdout
    as_json(run("plugins", "--json"))
    info = run("info", EVIL)
    assert "summary:         sum\\x0aFAKE SUMMARY \\u202e|x" in info.stdout
    run("info", EVIL, "--json")
    missing = run("info", "nope\x1b]0;t\x07\nFAKE", code=2)
    assert missing.stderr.count("\n") == 1 and "nope\\x1b]0;t\\x07\\x0aFAKE" in missing.stderr


def test_figures_draw_names_as_text(tmp_path, monkeypatch):
    """``$\\cmd$`` is a dollar sign and a backslash, not mathtext (which failed the whole figure), and a class
    called ``_hidden`` keeps its legend entry (matplotlib leaves out labels that start with ``_``)."""
    from catdog_zoo.reports import plots

    legends = []
    real = plots.save

    def save(fig, out, dpi=90):
        legends.extend(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())
        return real(fig, out, dpi)
    monkeypatch.setattr(plots, "save", save)
    classes = [PIPE, "_hidden", os.fsdecode(b"caf\xe9")]
    plots.confusion_matrix(np.eye(3, dtype=int), classes, tmp_path / "cm.png", title=PIPE)
    plots.image_grid([np.zeros((8, 8, 3), np.uint8)] * 3, classes, tmp_path / "grid.png", columns=3, suptitle=PIPE)
    plots.overlay_curves({"_run": [0.5, 0.6], PIPE: [0.4, 0.7]}, tmp_path / "curves.png")
    curve = {"pr": {"recall": [0, 1], "precision": [1, 0.5], "thresholds": [None, 0.5]},
             "roc": {"fpr": [0, 1], "tpr": [0, 1], "thresholds": [None, 0.5]}, "average_precision": 0.5,
             "roc_auc": 0.5, "operating_point": {"recall": 1, "precision": 0.5, "fpr": 1, "tpr": 1}}
    plots.pr_roc_curves({name: curve for name in classes}, tmp_path / "pr.png")
    for name in ("cm.png", "grid.png", "curves.png", "pr.png"):
        assert is_png(tmp_path / name), name
    assert " _run" in legends and f"{PIPE} (AP 0.500)" in legends and " _hidden (AUC 0.500)" in legends
    assert "caf\\xe9 (AP 0.500)" in legends
