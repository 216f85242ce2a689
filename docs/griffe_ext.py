"""Griffe extension for the API reference: reST idioms in docstrings become Markdown.

ptyfast's numpydoc docstrings use Sphinx cross-reference roles (``:func:`mk_simdata```,
``:class:`~ptyfast.raw_data.RawData```) and reST *simple tables* (columns framed by lines of
``=``), which Markdown would print literally. This turns

* each role into a code span (``~`` keeps the last dotted component, as Sphinx shows it),
* a paragraph-ending ``::`` (reST's literal-block marker) into ``:``,
* each simple table into a Markdown table (:func:`tables`).

Nothing else is changed. The detector guide includes the module docstring of
``ptyfast.model.detector`` through this, so its physics table is written once, in the code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(?<=\S)::$", re.MULTILINE)
_BORDER = re.compile(r"^( *)(=+(?: +=+)+) *$")
_CODE = re.compile(r"``([^`]+)``")


def _role(m: re.Match[str]) -> str:
    target = m.group(2).strip()
    if m.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _columns(border: str, indent: int) -> list[tuple[int, int | None]]:
    spans = [(m.start() + indent, m.end() + indent) for m in re.finditer(r"=+", border)]
    # the last column runs to the end of the line
    return [(a, spans[i + 1][0] if i + 1 < len(spans) else None) for i, (a, _) in enumerate(spans)]


def _cells(line: str, cols: list[tuple[int, int | None]]) -> list[str]:
    return [line[a:b].strip() if b is not None else line[a:].strip() for a, b in cols]


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(_CODE.sub(r"`\1`", c).replace("|", "\\|") for c in cells) + " |"


def tables(text: str) -> str:
    """reST simple tables in ``text`` → Markdown tables.

    A table is a block of lines: a border of ``=`` runs, header line(s), a border, body lines
    and a closing border (or, without a header, a border, body lines and a border). The
    border's runs give the columns (the last one runs to the end of the line). A
    body line starts a new row when its first column is not blank (and, in tables of three or
    more columns, its last one too); otherwise its cells continue the row above.
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _BORDER.match(lines[i])
        stop = i + 1
        while stop < len(lines) and lines[stop].strip():
            stop += 1  # a table is a block of non-blank lines
        borders = [j for j in range(i + 1, stop) if lines[j].strip() == lines[i].strip()]
        if not m or not borders or len(borders) > 2:
            out.append(lines[i])
            i += 1
            continue
        end = borders[-1]
        head_end = borders[0] if len(borders) == 2 else i  # headerless: one border pair
        indent = len(m.group(1))
        cols = _columns(m.group(2), indent)
        header = [""] * len(cols)
        for j in range(i + 1, head_end):
            header = [
                f"{a} {b}".strip() for a, b in zip(header, _cells(lines[j], cols), strict=True)
            ]
        rows: list[list[str]] = []
        for j in range(head_end + 1, end):
            cells = _cells(lines[j], cols)
            starts = bool(cells[0]) and (len(cols) < 3 or bool(cells[-1]))
            if starts or not rows:
                rows.append(cells)
            else:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        block = [_markdown_row(header), "|" + "---|" * len(cols)]
        block += [_markdown_row(r) for r in rows]
        out += ["", *block, ""]
        i = end + 1
    return "\n".join(out)


def rewrite(text: str) -> str:
    """The docstring ``text`` with roles as code spans, ``::`` literal markers as ``:`` and
    simple tables as Markdown tables."""
    return tables(_LITERAL.sub(":", _ROLE.sub(_role, text)))


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring that griffe loads (see :func:`rewrite`)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
