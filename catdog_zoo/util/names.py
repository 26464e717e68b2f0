"""How a name from disk is shown: decided once, here, for every place catdog-zoo shows or writes one.

Class folder names, file names, run folder names, model and plugin names are anyone's text. They can hold
terminal escape sequences (ESC, OSC: a retitled or cleared terminal, a forged hyperlink), control characters,
line breaks and carriage returns (a forged output line, a shifted ``labels.txt``), bidirectional-text
controls (``evil\\u202egpj.exe`` shown as ``evilexe.jpg``), Markdown and HTML, ``$...$`` (matplotlib's
mathtext) and bytes that are not UTF-8 (Python's surrogate escapes, which no UTF-8 write accepts).

The decision, one function per medium:

- :func:`terminal`: **the** form of a name for people. Every character that acts instead of showing (C0 and C1
  controls, line and paragraph separators included, DEL, the bidi controls U+202A-U+202E, U+2066-U+2069,
  U+200E, U+200F, U+061C) is written as a visible ``\\xNN`` or ``\\uNNNN``; a byte that is not UTF-8 as
  ``\\xNN``. What remains prints as itself, on one line. The other forms build on it, so a name reads the
  same on the terminal, in a table, a CSV, a page and a figure.
- :func:`lines`: text catdog-zoo composed (names in it already through :func:`terminal`) that may run over
  several lines: as :func:`terminal`, but line breaks and tabs stay. A last guard on whatever is printed.
- :func:`markdown`, :func:`html`: :func:`terminal`, then the medium's own escaping (a ``|`` never splits a
  table cell, ``<b>`` is shown, never rendered).
- :func:`plot`: :func:`terminal`; ``reports/plots.py`` draws every text with ``parse_math=False``, so a ``$``
  is a dollar sign, never mathtext.
- :func:`json_safe`: JSON keeps names faithful (its own escapes show control characters), but a byte that
  is not UTF-8 cannot be: it becomes the ``\\xNN`` text :func:`terminal` shows, so the JSON never holds a
  lone surrogate and any strict reader takes it.
- CSV: ``util.files.csv_cell``, :func:`terminal` plus protection against spreadsheet formulas.
- ``labels.txt`` (one class name per line, read by serving code): written raw, so a class name that
  :func:`terminal` would change cannot be written faithfully; :func:`label_problem` says why, and training
  refuses such a class folder by name (``data/splits.py``).
"""

from __future__ import annotations

import html as _html
import re

from ..errors import ZooError

# Acts instead of showing: C0 controls, DEL, C1 controls, Arabic letter mark, LRM/RLM, line and paragraph
# separators, bidi embeddings/overrides/isolates; and lone surrogates (undecodable file-name bytes).
_OTHER = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_NAME = re.compile(f"[\x00-\x1f{_OTHER}]")
_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHER}]")  # tab and line feed kept
_SURROGATE = re.compile("[\ud800-\udfff]")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _visible(match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text) -> str:
    """``text`` (a name, or a line that quotes names) as it is shown: one line, every character that would act
    on a terminal or reorder the line shown as ``\\xNN`` / ``\\uNNNN``. Idempotent; None is ``""``."""
    return _NAME.sub(_visible, "" if text is None else str(text))


def lines(text) -> str:
    """Text catdog-zoo composed over several lines (its names already through :func:`terminal`): as
    :func:`terminal`, but ``\\n`` and ``\\t`` are kept."""
    return _TEXT.sub(_visible, "" if text is None else str(text))


_MARKDOWN = {"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]", "|": "\\|", "~": "\\~",
             "$": "\\$", "#": "\\#", "<": "&lt;", ">": "&gt;", "&": "&amp;"}
_MARKDOWN_SPECIAL = re.compile("[" + re.escape("".join(_MARKDOWN)) + "]")


def markdown(text) -> str:
    """A name as Markdown text (a table cell included): :func:`terminal`, then every character Markdown (or
    the HTML and math it passes through) would read escaped."""
    return _MARKDOWN_SPECIAL.sub(lambda m: _MARKDOWN[m.group()], terminal(text))


def html(text) -> str:
    """A name as HTML text or attribute value (quotes escaped): :func:`terminal`, then HTML-escaped."""
    return _html.escape(terminal(text), quote=True)


def plot(text) -> str:
    """A name in a figure (title, tick label, legend): :func:`terminal`. The figure draws it with
    ``parse_math=False`` (``reports/plots.py``), so ``$`` stays a dollar sign."""
    return terminal(text)


def json_safe(data):
    """``data`` for JSON: strings (and keys) with each lone surrogate, a byte that is not UTF-8, replaced by the
    ``\\xNN`` text :func:`terminal` shows; everything else as it is (JSON escapes control characters itself)."""
    if isinstance(data, str):
        return _SURROGATE.sub(_visible, data)
    if isinstance(data, dict):
        return {json_safe(k) if isinstance(k, str) else k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    return data


def label_problem(name: str) -> str | None:
    """Why ``name`` cannot be one line of ``labels.txt`` faithfully (None when it can): it holds a character
    :func:`terminal` would not show as itself, named."""
    found = _NAME.search(name)
    if found is None:
        return None
    char = found.group()
    if _SURROGATE.fullmatch(char):
        kind = "a byte that is not UTF-8"
    elif char == "\r":
        kind = "a carriage return"
    elif char in _LINE_BREAKS:
        kind = "a line break"
    elif char in _BIDI:
        kind = "a bidirectional-text control"
    else:
        kind = "a control character"
    return f"its name holds {terminal(char)} ({kind})"


def labels_file(class_names, owner) -> str:
    """``labels.txt``: one class name per line, written as they are; a name that cannot be one line faithfully
    (:func:`label_problem`: a run trained before such names were refused, or an edited record) is a
    :class:`~catdog_zoo.errors.ZooError` naming it and ``owner`` (the run), never a shifted file."""
    for name in class_names:
        why = label_problem(name)
        if why is not None:
            raise ZooError(f"class '{terminal(name)}' of {terminal(owner)} cannot be written to labels.txt: {why}, "
                           "and labels.txt holds one class name per line")
    return "".join(f"{name}\n" for name in class_names)
