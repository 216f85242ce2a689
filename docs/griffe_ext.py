"""Griffe extension for the API reference: Sphinx roles in docstrings become code spans.

ptyfast's numpydoc docstrings use Sphinx cross-reference roles (``:func:`mk_simdata```,
``:class:`~ptyfast.raw_data.RawData```), which Markdown would print literally. This turns
each role into a code span (``~`` keeps the last dotted component, as Sphinx shows it) and a
paragraph-ending ``::`` (reST's literal-block marker) into ``:``. Nothing else is changed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _role(m: re.Match[str]) -> str:
    target = m.group(2).strip()
    if m.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def rewrite(text: str) -> str:
    """The docstring ``text`` with roles as code spans and ``::`` literal markers as ``:``."""
    return _LITERAL.sub(":", _ROLE.sub(_role, text))


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring that griffe loads (see :func:`rewrite`)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
