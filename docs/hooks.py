"""MkDocs hook: make sure the generated figures exist before the site is built.

``make docs`` regenerates every figure (``python docs/gen_figures.py``) and then builds; this
hook covers a bare ``mkdocs build`` / ``mkdocs serve`` from a clean clone by generating the
figures when any of them is missing (regenerating on every ``serve`` reload would be slow).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

_GEN = Path(__file__).with_name("gen_figures.py")


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("ptyfast_docs_gen_figures", _GEN)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def on_pre_build(config: Any, **kwargs: Any) -> None:
    gen = _load_generator()
    if gen.missing():
        gen.main([])
