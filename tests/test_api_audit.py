"""Audit of the public API surface: what the docstrings, the stubs, ``__all__`` and the docs
say against what the code does.

* Docstrings of the model wing (``ptyfast.__all__``, :mod:`ptyfast.model`'s public modules,
  :mod:`ptyfast.io` and its format modules, :mod:`ptyfast.distributed`,
  :mod:`ptyfast.plotting`) follow one of the project's two conventions, and each is checked
  against ``inspect.signature``:

  - numpydoc: a ``Parameters`` (or, for a dataclass, ``Attributes``) section lists exactly
    the signature's parameters (``a, b : type`` documents both; ``**kw`` or ``kw`` the
    catch-all); a header ``name : type, default X`` states the real default, ``optional``
    only where there is a default, ``keyword-only`` only for keyword-only parameters;
  - prose (short helpers and methods, no section): every parameter is named as a code span
    (````name```` or inside one, ````name=...````), except the call's subject, its first
    required positional parameter, which prose names by its role ("a record", "the
    dataset").

  Also: keywords in documented calls exist, Sphinx cross-references resolve, ``Raises``
  sections name real exceptions, documented attributes exist, the Examples of modules no
  other test doctests run, and every public name is on the API pages.
* ``_core.pyi`` agrees with the compiled module (names, order, kinds, defaults; the full
  ``mypy.stubtest`` runs in ``make lint``); every ``__all__`` entry exists, nothing private is
  exported, and the type checkers' view of ``ptyfast``'s lazy names is the runtime one.
* Claims of README.md, COMPATIBILITY.md and docs/ that a test can check mechanically and
  that ``test_docs_snippets.py`` / ``test_packaging.py`` do not run.
* Bad input: the public entry points the fuzz tables (``test_fuzz_model.py``,
  ``test_fuzz_inputs.py``, ``test_input_hardening.py``, ``test_io_bad_input.py``,
  ``test_compat_bad_input.py``) leave out get hostile values; errors name the argument and
  inputs are left unchanged.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import math
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The package as imported: the checkout's python/ptyfast, or the installed wheel's copy (CI's
# installed-wheel run has tests/ outside any checkout).
PKG = Path(importlib.util.find_spec("ptyfast").origin).resolve().parent  # type: ignore[arg-type]

# The public modules of the model layer (wave 2); each has an ``__all__``.
MODEL_MODULES = [
    "ptyfast",
    "ptyfast.model.geometry",
    "ptyfast.model.probes",
    "ptyfast.model.scans",
    "ptyfast.model.objects",
    "ptyfast.model.detector",
    "ptyfast.model.experiment",
    "ptyfast.model.dataset",
    "ptyfast.model.campaign",
    "ptyfast.model.provenance",
    "ptyfast.model.recipes",
    "ptyfast.io",
    "ptyfast.io.npz",
    "ptyfast.io.ptychodus",
    "ptyfast.io.cxi",
    "ptyfast.io.zarr",
    "ptyfast.distributed",
    "ptyfast.plotting",  # Dataset.preview's module
]


# --------------------------------------------------------------------------- discovery


def _public_callables() -> Iterator[tuple[str, Any]]:
    """``(qualified name, callable)`` of every public function, class and method (once)."""
    seen: set[int] = set()
    for modname in MODEL_MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, types.ModuleType) or not callable(obj):
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # exceptions: the signature is BaseException's
            yield f"{modname}.{name}", obj
            if not inspect.isclass(obj):
                continue
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) and id(member) not in seen:
                    seen.add(id(member))
                    yield f"{modname}.{name}.{attr}", member


CALLABLES = dict(_public_callables())

_SECTION = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.MULTILINE)


def _sections(doc: str) -> dict[str, str]:
    """numpydoc sections of ``doc`` (title -> body); the summary under ``""``."""
    out: dict[str, str] = {}
    marks = list(_SECTION.finditer(doc))
    out[""] = doc[: marks[0].start()] if marks else doc
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(doc)
        out[m.group(1)] = doc[m.end() : end]
    return out


def _entries(body: str) -> list[tuple[list[str], str]]:
    """``(names, header after the colon)`` of each unindented line of a section body."""
    out = []
    for line in body.splitlines():
        if not line.strip() or line[0].isspace():
            continue
        names, _, rest = line.partition(" : ")
        out.append(([n.strip() for n in names.split(",")], rest.strip()))
    return out


def _params(obj: Any) -> list[inspect.Parameter]:
    sig = inspect.signature(obj)
    return [p for p in sig.parameters.values() if p.name not in ("self", "cls")]


def _doc(obj: Any) -> str:
    return inspect.getdoc(obj) or ""


def _is_dataclass(obj: Any) -> bool:
    return inspect.isclass(obj) and "__dataclass_fields__" in vars(obj)


_PI = {"π": math.pi, "pi": math.pi}


def _value(text: str) -> Any:
    """A documented default as a Python value (``π/2``, ``(0, 0)``, ``'focus'``, ``None``)."""
    text = text.strip().strip("`")
    expr = text
    for k, v in _PI.items():
        expr = expr.replace(k, repr(v))
    try:
        code = compile(ast.parse(expr, mode="eval"), "<default>", "eval")
        return eval(code, {"__builtins__": {}})
    except Exception:  # noqa: BLE001 - not a value: compared as text
        return text


def _same(documented: Any, real: Any) -> bool:
    """Whether a documented default (parsed by :func:`_value`) is the real one: sequences
    element by element, numbers to 1e-12 (``π/2``), bools and None by identity."""
    if isinstance(real, (tuple, list)) and isinstance(documented, (tuple, list)):
        return len(real) == len(documented) and all(
            _same(a, b) for a, b in zip(documented, real, strict=True)
        )
    if isinstance(real, bool) or real is None or isinstance(documented, bool):
        return documented is real
    if isinstance(real, (int, float)) and isinstance(documented, (int, float)):
        return math.isclose(documented, real, rel_tol=1e-12)
    return type(documented) is type(real) and bool(documented == real)


def _check_section(
    qual: str, params: list[inspect.Parameter], entries: list[tuple[list[str], str]]
) -> list[str]:
    problems = []
    by_name = {p.name: p for p in params}
    documented: list[str] = []
    for names, header in entries:
        names = [n.lstrip("*") for n in names]
        documented += names
        default = re.search(r"\bdefault\s+(.+?)\s*$", header)
        if default and len(names) > 1:
            values = re.split(r"\s+and\s+", default.group(1))
        elif default:
            values = [default.group(1)]
        else:
            values = []
        for i, n in enumerate(names):
            p = by_name.get(n)
            if p is None:
                continue
            if values:
                if p.default is inspect.Parameter.empty:
                    problems.append(f"{qual}: {n} documented 'default {values}' has no default")
                elif i < len(values) and not _same(_value(values[i]), p.default):
                    problems.append(
                        f"{qual}: {n} documented default {values[i]!r}, real {p.default!r}"
                    )
            if re.search(r"\boptional\b", header) and p.default is inspect.Parameter.empty:
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    problems.append(f"{qual}: {n} documented optional, has no default")
            if "keyword-only" in header and p.kind is not p.KEYWORD_ONLY:
                problems.append(f"{qual}: {n} documented keyword-only, is {p.kind.description}")
    missing = [p.name for p in params if p.name not in documented]
    extra = [n for n in documented if n not in by_name]
    if missing:
        problems.append(f"{qual}: parameters not documented: {missing}")
    if extra:
        problems.append(f"{qual}: documented parameters that do not exist: {extra}")
    dup = sorted({n for n in documented if documented.count(n) > 1})
    if dup:
        problems.append(f"{qual}: documented twice: {dup}")
    return problems


def _in_code_span(name: str, doc: str) -> bool:
    spans = re.findall(r"``(.+?)``", doc, re.DOTALL)
    return any(re.search(rf"(?<![\w.]){re.escape(name)}\b", s) for s in spans)


def audit_docstring(qual: str, obj: Any) -> list[str]:
    """What is wrong with ``obj``'s docstring against its signature (empty: nothing)."""
    doc = _doc(obj)
    if inspect.isclass(obj) and "__init__" not in vars(obj):
        # an inherited constructor is documented where it is defined (the format writers:
        # BlockWriter's docstring)
        owner = next(c for c in obj.__mro__ if "__init__" in vars(c))
        if owner is not object and owner in CALLABLES.values():
            doc = _doc(owner)
    if not doc.strip():
        return [f"{qual}: no docstring"]
    params = _params(obj)
    sections = _sections(doc)
    if "Parameters" in sections or "Other Parameters" in sections:
        entries = _entries(sections.get("Parameters", "")) + _entries(
            sections.get("Other Parameters", "")
        )
        return _check_section(qual, params, entries)
    if _is_dataclass(obj) and "Attributes" in sections:
        return _check_section(qual, params, _entries(sections["Attributes"]))
    # prose convention
    subject = params[0] if params else None
    if subject is not None and not (
        subject.kind in (subject.POSITIONAL_ONLY, subject.POSITIONAL_OR_KEYWORD)
        and subject.default is inspect.Parameter.empty
    ):
        subject = None
    return [
        f"{qual}: parameter {p.name!r} not named in the (prose) docstring"
        for p in params
        if p is not subject and not _in_code_span(p.name, doc)
    ]


def test_discovery_finds_the_model_layer() -> None:
    assert len(CALLABLES) > 100
    for name in ("ptyfast.simulate", "ptyfast.Detector.eiger", "ptyfast.model.scans.raster"):
        assert name in CALLABLES


@pytest.mark.parametrize("qual", sorted(CALLABLES))
def test_docstring_matches_signature(qual: str) -> None:
    problems = audit_docstring(qual, CALLABLES[qual])
    assert not problems, "\n".join(problems)


def test_audit_catches_what_it_should() -> None:
    """The docstring audit itself can fail: a wrong default, a missing and a ghost name."""

    def f(a: int, b: float = 2.0, *, c: str = "x") -> None:
        """Summary.

        Parameters
        ----------
        a : int
        b : float, default 3.0
        d : int, optional
        """

    problems = "\n".join(audit_docstring("f", f))
    assert "b documented default" in problems
    assert "['c']" in problems and "['d']" in problems

    def g(subject: Any, *, flag: bool = False) -> None:
        """Do it to the subject."""

    assert audit_docstring("g", g) == ["g: parameter 'flag' not named in the (prose) docstring"]


# --------------------------------------------------------------------------- stubs, __all__


def _stub_functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _stub_signature(fn: ast.FunctionDef) -> list[tuple[str, str, Any]]:
    """``(name, kind, default)`` of a stub's parameters (``...`` for no default)."""
    a = fn.args
    out: list[tuple[str, str, Any]] = []
    positional = a.posonlyargs + a.args
    defaults: list[Any] = [...] * (len(positional) - len(a.defaults)) + [
        ast.literal_eval(d) for d in a.defaults
    ]
    for i, p in enumerate(positional):
        kind = "POSITIONAL_ONLY" if i < len(a.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        out.append((p.arg, kind, defaults[i]))
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", ...))
    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append((p.arg, "KEYWORD_ONLY", ... if d is None else ast.literal_eval(d)))
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", ...))
    return out


def _runtime_signature(fn: Any) -> list[tuple[str, str, Any]]:
    return [
        (p.name, p.kind.name, ... if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(fn).parameters.values()
    ]


def test_core_stub_agrees_with_the_extension() -> None:
    """``_core.pyi``: the same names (``__all__`` too), parameters in the same order, of the
    same kinds, with the same defaults as the compiled module's text signatures."""
    from ptyfast import _core

    stubs = sorted(PKG.glob("**/*.pyi"))
    assert [p.name for p in stubs] == ["_core.pyi"], "a new stub needs a check here"
    tree = ast.parse(stubs[0].read_text(encoding="utf-8"))
    stub_all = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "__all__"
    )
    assert sorted(stub_all) == sorted(_core.__all__)
    runtime = {n for n in dir(_core) if not n.startswith("__")} | {"__version__"}
    assert set(stub_all) == runtime
    functions = _stub_functions(stubs[0])
    assert set(functions) == {n for n in stub_all if callable(getattr(_core, n))} - {"PtyfastError"}
    problems = [
        f"{name}: stub {_stub_signature(fn)} != runtime {_runtime_signature(getattr(_core, name))}"
        for name, fn in sorted(functions.items())
        if _stub_signature(fn) != _runtime_signature(getattr(_core, name))
    ]
    assert not problems, "\n".join(problems)


def _all_modules() -> list[str]:
    """Every public module of the package (no ``_`` component), imported."""
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts[1:]):
            continue
        out.append(".".join(parts))
    return out


PUBLIC_MODULES = _all_modules()
#: Modules that import TensorFlow when imported.
HEAVY = {"ptyfast.tf_reference"}
#: Public modules without ``__all__`` on purpose: the command line (its API is the CLI) and
#: the model package (its names are re-exported by ``ptyfast``).
NO_ALL = {"ptyfast.cli", "ptyfast.model"}


def _check_all_statically(modname: str) -> None:
    """``__all__`` of a module's source: each name bound at its top level, none private."""
    path = PKG.parent.joinpath(*modname.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bound: set[str] = set()
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound.add(target.id)
                    if target.id == "__all__" and node.value is not None:
                        names = list(ast.literal_eval(node.value))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    assert names, f"{modname} has no literal __all__"
    assert len(names) == len(set(names)), f"duplicates in {modname}.__all__"
    assert not [n for n in names if n not in bound], f"{modname}.__all__: unbound names"
    assert not [n for n in names if n.startswith("_")], f"{modname}.__all__: private names"


@pytest.mark.parametrize("modname", [m for m in PUBLIC_MODULES if m != "ptyfast.__main__"])
def test_all_entries_exist_and_nothing_private_is_exported(modname: str) -> None:
    """Each public module's ``__all__``: no duplicates, each name resolves (``from m import
    *`` works), none is private (``__version__`` apart), and each public name defined in the
    module itself is listed; only the modules of :data:`NO_ALL` have none. (``python -m
    ptyfast``'s ``__main__`` is not a module to import from.)"""
    if modname in HEAVY:  # importing TensorFlow takes ~12 s: read the source instead
        _check_all_statically(modname)
        return
    mod = importlib.import_module(modname)
    names = getattr(mod, "__all__", None)
    if names is None or modname in NO_ALL:
        assert (names is None) == (modname in NO_ALL), f"{modname}: __all__ {names!r}"
        return
    assert len(names) == len(set(names)), f"duplicates in {modname}.__all__"
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{modname}.__all__ names what does not exist: {missing}"
    private = [n for n in names if n.startswith("_") and n != "__version__"]
    assert not private, f"{modname}.__all__ exports private names: {private}"
    namespace: dict[str, Any] = {}
    exec(f"from {modname} import *", namespace)  # noqa: S102 - the star import itself
    assert set(names) <= set(namespace)


def test_top_level_lazy_names_match_the_type_checkers_view() -> None:
    """``ptyfast/__init__.py``'s ``TYPE_CHECKING`` imports (what mypy and IDEs see) name the
    same objects as the lazy ``__getattr__`` (what runs)."""
    import ptyfast

    tree = ast.parse((PKG / "__init__.py").read_text(encoding="utf-8"))
    block = next(
        n
        for n in tree.body
        if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"
    )
    seen: dict[str, Any] = {}
    for imp in block.body:
        assert isinstance(imp, ast.ImportFrom)
        base = importlib.import_module("." * imp.level + (imp.module or ""), "ptyfast")
        for alias in imp.names:
            value = getattr(base, alias.name, None)
            if value is None:
                value = importlib.import_module(f"{base.__name__}.{alias.name}")
            seen[alias.asname or alias.name] = value
    lazy = set(ptyfast._LAZY)
    assert set(seen) == lazy
    for name in sorted(lazy):
        assert getattr(ptyfast, name) is seen[name], name
    assert set(dir(ptyfast)) >= set(ptyfast.__all__)


# --------------------------------------------------------------------------- cross references

#: Call-shaped code spans of other libraries' functions (``np.load(allow_pickle=True)``).
_FOREIGN = ("np.", "numpy.", "scipy.", "json.", "os.", "h5py.", "zarr.", "tf.", "torch.")
_CALL = re.compile(r"(?<![\w])((?:\w+\.)*)(\w+)\(([^()]*(?:\([^()]*\)[^()]*)*)\)")
_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj|const):`~?([^`]+)`")


def _texts() -> Iterator[tuple[str, str, str]]:
    """``(where, text, code-span pattern)`` of every docstring and page audited."""
    for qual, obj in CALLABLES.items():
        yield qual, _doc(obj), r"``(.+?)``"
    for modname in MODEL_MODULES:
        yield modname, importlib.import_module(modname).__doc__ or "", r"``(.+?)``"
    for page in [ROOT / "README.md", ROOT / "COMPATIBILITY.md", *(ROOT / "docs").rglob("*.md")]:
        text = page.read_text(encoding="utf-8")
        yield str(page.relative_to(ROOT)), text, r"(?<!`)`([^`\n]+)`(?!`)"


def test_keywords_in_documented_calls_exist() -> None:
    """A call written in a docstring or page (``w.write(start, diffraction, patches=None)``,
    ``scans.raster(..., snake=True)``) passes only keywords that a public callable of that
    name takes (or one that takes ``**kwargs``)."""
    by_name: dict[str, list[inspect.Signature]] = {}
    for qual, obj in CALLABLES.items():
        by_name.setdefault(qual.rsplit(".", 1)[-1], []).append(inspect.signature(obj))
    checked, problems = 0, []
    for where, text, span in _texts():
        for code in re.findall(span, text, re.DOTALL):
            for m in _CALL.finditer(code):
                if m.group(1).startswith(_FOREIGN) or m.group(2) not in by_name:
                    continue
                for kw in re.findall(r"(?:^|,)\s*(\w+)\s*=(?!=)", m.group(3)):
                    checked += 1
                    if not any(
                        kw in sig.parameters
                        or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
                        for sig in by_name[m.group(2)]
                    ):
                        problems.append(f"{where}: {m.group(0)!r}: no {m.group(2)} takes {kw}=")
    assert checked > 30  # the pattern finds calls
    assert not problems, "\n".join(problems)


#: Standard-library modules newer than the oldest supported Python (3.10), which a docstring
#: may name: ``tomllib`` (3.11; ``tomli`` before).
_NEWER_STDLIB = {"tomllib": (3, 11)}


def _resolves(target: str, modname: str, owner: Any) -> bool:
    target = target.strip().removesuffix("()")
    if target in _NEWER_STDLIB and sys.version_info < _NEWER_STDLIB[target]:
        return True
    if target.startswith("."):  # Sphinx's relative form, from the module's package
        target = modname + target if owner == "package" else modname.rsplit(".", 1)[0] + target
    candidates = [target]
    if owner is not None and owner != "package":
        candidates.append(f"{owner.__module__}.{owner.__qualname__}.{target}")
    candidates += [f"{modname}.{target}", f"{modname.rsplit('.', 1)[0]}.{target}"]
    candidates += [f"ptyfast.{target}", f"ptyfast.model.{target}"]
    for candidate in candidates:
        parts = candidate.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            return True
    return False


def test_cross_references_resolve() -> None:
    """Each Sphinx role (``:func:`x```, ``:meth:`x```, ``:data:`x```, ...) in the audited
    docstrings names something that exists: the API pages render them as plain code spans
    (``docs/griffe_ext.py``), so nothing else would notice a dangling one."""
    problems = []
    for qual, obj in CALLABLES.items():
        modname = getattr(obj, "__module__", "ptyfast")
        owner = obj if inspect.isclass(obj) else None
        head = getattr(obj, "__qualname__", "").split(".")[0]
        if owner is None and head != getattr(obj, "__name__", head):
            owner = getattr(importlib.import_module(modname), head, None)
        problems += [
            f"{qual}: {t}" for t in _ROLE.findall(_doc(obj)) if not _resolves(t, modname, owner)
        ]
    for modname in MODEL_MODULES:
        mod = importlib.import_module(modname)
        owner = "package" if hasattr(mod, "__path__") else None
        problems += [
            f"{modname}: {t}"
            for t in _ROLE.findall(mod.__doc__ or "")
            if not _resolves(t, modname, owner)
        ]
    assert not problems, "\n".join(problems)
    assert not _resolves("no_such_function", "ptyfast.io", None)


def test_every_public_name_is_on_the_api_pages() -> None:
    """Each ``__all__`` name of the audited modules is rendered by a ``:::`` directive of
    docs/api/ (itself, its class or a module above it), or named with its full path in a
    page's text (``ptyfast.PtyfastError``, data whose rendering would show private names)."""
    targets: set[str] = set()
    prose = ""
    for page in (ROOT / "docs" / "api").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        targets |= set(re.findall(r"^::: ([\w.]+)", text, re.M))
        prose += text

    def shown(path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:i]) in targets for i in range(1, len(parts) + 1))

    missing = []
    for modname in MODEL_MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            paths = [f"{modname}.{name}"]
            if isinstance(obj, types.ModuleType):
                paths.append(obj.__name__)
            elif hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
                paths.append(f"{obj.__module__}.{obj.__qualname__}")
            if f"`{modname}.{name}`" in prose:
                continue
            if not any(shown(p) for p in paths):
                missing.append(f"{modname}.{name}")
    assert not missing, missing


# --------------------------------------------------------------------------- claims of the docs


def _builder_rows(page: str) -> list[str]:
    """The ``f(...)`` code spans of the first column of a page's builder table."""
    text = (ROOT / page).read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            out += re.findall(r"`(\w+\([^`]*\))`", first)
    return out


@pytest.mark.parametrize(
    ("page", "module"), [("docs/guides/probes.md", "probes"), ("docs/guides/scans.md", "scans")]
)
def test_builder_tables_match_the_signatures(page: str, module: str) -> None:
    """The builder tables write signatures: positional names in order, ``name=`` options
    that exist, and ``name=value`` defaults that are the real ones."""
    mod = getattr(importlib.import_module("ptyfast"), module)
    rows = _builder_rows(page)
    assert len(rows) >= 7, rows
    problems = []
    for row in rows:
        name, _, args = row.partition("(")
        sig = inspect.signature(getattr(mod, name))
        params = list(sig.parameters.values())
        parts = [a.strip() for a in re.split(r"[,/]", args.removesuffix(")")) if a.strip()]
        positional = [a for a in parts if "=" not in a]
        if [p.name for p in params[: len(positional)]] != positional:
            problems.append(f"{page}: {row}: positional {positional}, real {params}")
        for part in parts:
            if "=" not in part:
                continue
            key, _, value = part.partition("=")
            p = sig.parameters.get(key.strip())
            if p is None:
                problems.append(f"{page}: {row}: no parameter {key!r}")
            elif value.strip() and not _same(_value(value), p.default):
                problems.append(f"{page}: {row}: {key} default {value!r}, real {p.default!r}")
    assert not problems, "\n".join(problems)


def _tiny_dataset(detector: Any) -> Any:
    from ptyfast import Experiment, objects, probes, scans, simulate

    e = Experiment(
        objects.dead_leaves(40, seed=1), probes.gaussian(16, 3.0), scans.raster(2, 2, 4.0),
        detector, photons=1e4,
    )  # fmt: skip
    return simulate(e, seed=3)


@pytest.mark.parametrize(
    ("preset", "dtype"),
    [("ideal", "float32"), ("eiger", "uint32"), ("pilatus", "uint32"), ("integrating", "uint16")],
)
def test_reading_dtypes_of_the_presets(preset: str, dtype: str) -> None:
    """docs/guides/detectors.md ("Readings, photons and amplitudes"): float32 photon counts
    for the ideal detector, ``uint32`` counts for the photon-counting presets, ``uint16`` ADU
    for the integrating one; README: ``Detector.eiger(qe=0.9)`` gives uint32 counts."""
    import numpy as np

    from ptyfast import Detector

    detector = Detector.preset(preset)
    ds = _tiny_dataset(detector)
    assert ds.diffraction.dtype == np.dtype(dtype)
    assert Detector.eiger(qe=0.9).dtype == np.dtype("uint32")


def test_detector_claims_of_the_guide_and_docstrings() -> None:
    """docs/guides/detectors.md and ``Detector.integrating``: the integrating preset's
    defaults; the beam in the middle of a module (a crop smaller than a module has no gap);
    ``readings_to_photons = (readings − offset)/gain − dark`` with 0 at masked pixels;
    COMPATIBILITY.md: noise stream ``"v1"`` by default (``Detector()``, ``Detector.ideal()``),
    ``"v2"`` opt-in; README: ``Detector(dtype="float64")`` for any dose."""
    import numpy as np

    from ptyfast import Detector

    d = Detector.integrating()
    assert (d.gain, d.offset, d.read_noise, d.dark, d.full_well) == (10, 100, 3, 0.05, 65000)
    assert d.dtype == np.dtype("uint16") and d.overflow == "saturate"
    for preset in (Detector.eiger(), Detector.eiger(generation=1), Detector.pilatus()):
        assert preset.mask(64).all(), preset.name
    g = Detector.integrating(beamstop_radius_px=2.0)
    readings = np.full((2, 16, 16), 1000, np.uint16)
    photons = g.readings_to_photons(readings)
    expected = (1000 - 100) / 10 - 0.05
    assert photons.dtype == np.float64
    assert np.all(photons[:, g.mask(16)] == expected)
    assert np.all(photons[:, ~g.mask(16)] == 0) and (~g.mask(16)).any()
    assert Detector().poisson_stream == Detector.ideal().poisson_stream == "v1"
    assert Detector(poisson_stream="v2").poisson_stream == "v2"
    assert _tiny_dataset(Detector(dtype="float64")).diffraction.dtype == np.float64


def test_pixel_codes_as_documented() -> None:
    """``Detector.pixel_map``'s docstring spells out :data:`PIXEL_CODES` (the API pages show
    the dict only as an expression of private constants); a pixel map holds those codes."""
    from ptyfast import Detector
    from ptyfast.model.detector import PIXEL_CODES

    doc = _doc(Detector.pixel_map)
    stated = {k: int(v) for k, v in re.findall(r"``(\w+)`` (\d+)", doc)}
    assert stated == PIXEL_CODES
    codes = Detector(beamstop_radius_px=2.0, module_px=(10, 10), gap_px=(2, 2)).pixel_map(16)
    assert {int(c) for c in set(codes.ravel().tolist())} == {0, 1, 2}


def test_dataset_fields_as_the_experiments_guide_tabulates() -> None:
    """docs/guides/experiments.md, "What a dataset holds": shapes and dtypes of each field."""
    import json

    import numpy as np

    from ptyfast import Detector, Geometry

    ds = _tiny_dataset(Detector.ideal())
    m, n = 4, 16
    assert ds.diffraction.shape == (m, n, n)
    assert ds.mask.shape == (n, n) and ds.mask.dtype == np.bool_
    for a in (ds.positions_nominal, ds.positions_true):
        assert a.shape == (m, 2) and a.dtype == np.float64
    assert ds.probe.shape == (1, n, n) and ds.probe.dtype == np.complex64
    assert ds.object.shape == (40, 40) and ds.object.dtype == np.complex64
    assert isinstance(ds.photons, float) and isinstance(ds.intensity_scale, float)
    assert ds.geometry is None or isinstance(ds.geometry, Geometry)
    json.dumps(ds.provenance)


def test_scan_and_probe_claims_of_the_guides() -> None:
    """docs/guides/scans.md: a scan holds read-only ``(M, 2)`` float64 ``nominal``/``true``
    relative to the scan centre (``raster``: "rectangular grid, centred"); ``placed`` refuses a
    patch leaving the object with a ``ValueError``. docs/guides/probes.md and README: every
    probe builder returns complex64 ``(N, N)`` (or ``(P, N, N)`` for modes) with unit total
    intensity."""
    import numpy as np

    from ptyfast import Geometry, probes, scans

    s = scans.raster(3, 4, 2.0)
    for a in (s.nominal, s.true):
        assert a.shape == (12, 2) and a.dtype == np.float64 and not a.flags.writeable
    assert np.allclose(s.nominal.mean(axis=0), 0.0)
    with pytest.raises(ValueError, match=r"position 0 at \(x, y\)"):  # the first that leaves
        scans.raster(3, 3, 10.0).placed((20, 20), 16)
    g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=32)
    built = [
        probes.disk(32),
        probes.gaussian(32, 4.0),
        probes.super_gaussian(32, 6.0),
        probes.fresnel_zone_plate(g, 2e-6, 200e-9),
        probes.zernike(32, seed=1),
        probes.modes(probes.gaussian(32, 4.0), 3),
    ]
    for p in built:
        assert p.dtype == np.complex64 and p.shape[-2:] == (32, 32) and p.ndim in (2, 3)
        assert math.isclose(float(np.sum(np.abs(p.astype(np.complex128)) ** 2)), 1.0, rel_tol=1e-5)
    assert built[-1].shape == (3, 32, 32)


def test_replay_of_a_dataset_takes_its_arrays() -> None:
    """docs/guides/provenance.md: ``ptyfast.replay(dataset)`` takes the arrays from the
    dataset itself, for records that reference large arrays by hash (``replay(provenance)``
    then needs them: a ``ProvenanceError`` saying so)."""
    import numpy as np

    from ptyfast import Detector, Experiment, objects, probes, replay, scans, simulate
    from ptyfast.model.provenance import ProvenanceError

    e = Experiment(
        objects.dead_leaves(40, seed=1), probes.gaussian(16, 3.0), scans.raster(2, 2, 4.0),
        Detector.eiger(), 1e4,
    )  # fmt: skip
    ds = simulate(e, seed=3, embed_max_bytes=0)
    with pytest.raises(ProvenanceError, match="object is recorded by reference only"):
        replay(ds.provenance)
    again = replay(ds)
    assert np.array_equal(again.diffraction, ds.diffraction)
    assert again.diffraction.dtype == np.uint32


def test_error_types_the_readme_names() -> None:
    """README: ``PtyfastError`` (from the Rust core) is a ``ValueError`` and pickles (it
    crosses process boundaries); ``FormatError``, ``RecipeError``, ``CampaignError`` and
    ``ProvenanceError`` are ``ValueError``s."""
    import pickle

    from ptyfast import PtyfastError
    from ptyfast.io import FormatError
    from ptyfast.model import campaign, provenance, recipes

    err = pickle.loads(pickle.dumps(PtyfastError("n must be > 0, got -1")))
    assert type(err) is PtyfastError and str(err) == "n must be > 0, got -1"
    for cls in (
        PtyfastError,
        FormatError,
        recipes.RecipeError,
        campaign.CampaignError,
        provenance.ProvenanceError,
    ):
        assert issubclass(cls, ValueError), cls


def test_dask_guide_defaults() -> None:
    """docs/guides/dask.md and ``distributed.simulate``: shards of about 64 MiB of readings
    by default."""
    from ptyfast import distributed

    assert distributed.SHARD_BYTES == 64 * 2**20


# --------------------------------------------------------------------------- bad input

#: Values that are not what a parameter wants, for the entry points the fuzz tables leave out.
_BAD: list[Any] = [math.nan, math.inf, -1, -1.0, 0.5, "1", None, True, [1], 2**70]


def _names(message: str, word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}\b", message) is not None


def _refuses(fn: Callable[[], Any], name: str) -> str | None:
    """None when ``fn()`` raises ValueError/TypeError naming ``name``; else what happened."""
    try:
        fn()
    except (ValueError, TypeError) as exc:
        return None if _names(str(exc), name) else f"{type(exc).__name__} not naming it: {exc}"
    except Exception as exc:  # noqa: BLE001 - the point: a foreign exception type
        return f"foreign {type(exc).__name__}: {exc}"
    return "accepted"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from ptyfast import Detector

    ds = _tiny_dataset(Detector.ideal())
    path = tmp_path_factory.mktemp("audit") / "tiny.npz"
    ds.save(path)
    return ds, path


def _bad_cases(ds: Any, path: Path) -> dict[str, tuple[Callable[[Any], Any], list[Any]]]:
    """name -> (call with the bad value in the named parameter, values that must fail)."""
    import numpy as np

    from ptyfast import Dataset, io
    from ptyfast.model import provenance, recipes

    fields = {
        k: getattr(ds, k)
        for k in ("diffraction", "mask", "positions_nominal", "positions_true", "probe", "object")
    }
    not_int = [v for v in _BAD if v not in (-1, 2**70)]
    return {
        "start": (lambda v: io.reader(path).read(v, 2), [*not_int, -1, 2**70]),
        "stop": (lambda v: io.reader(path).read(0, v), [*not_int, -1, 2**70]),
        "master": (lambda v: recipes.derive_seed(v, 0, "object.seed"), [*not_int, -1]),
        "index": (lambda v: recipes.derive_seed(1, v, "object.seed"), [*not_int, -1]),
        "path": (lambda v: recipes.derive_seed(1, 0, v), [math.nan, None, 1, True, b"x"]),
        "bits": (lambda v: recipes.derive_seed(1, 0, "x", bits=v), [*not_int, -1, 2**70, 48]),
        "intensity_scale": (
            lambda v: io.amplitudes(ds.diffraction, None, v),
            [*_BAD[:4], "1", None, True, [1], np.ones(2), 0],
        ),
        "readings": (
            lambda v: io.amplitudes(v, None, 1.0),
            [np.broadcast_to(np.float32(1), (2**40, 2, 2)), np.array(["a"]), [[1j]], None],
        ),
        "embed_max_bytes": (
            lambda v: provenance.encode_array(ds.probe, embed_max_bytes=v),
            [*not_int, -1],
        ),
        "doc": (recipes.dumps, [None, "x", [1], 1.0, b"x"]),
        "comment": (lambda v: recipes.dumps({}, comment=v), [1, [1], b"x", True]),
        "text": (recipes.loads, [None, {}, [1], 1.0, b"x"]),
        "provenance": (provenance.seeds, [None, [1], "x", {}, {"simulation": 1}]),
        "a": (provenance.array_sha256, [None, np.array([object()]), {}]),
        "photons": (lambda v: Dataset(**fields, photons=v), ["1", None, True, [1]]),
        "intensity_scale (Dataset)": (
            lambda v: Dataset(**fields, intensity_scale=v),
            ["1", None, True, [1]],
        ),
        "detector": (lambda v: Dataset(**fields, detector=v), ["eiger", {"qe": 1.0}, 1, True]),
    }


_CASES = [
    "start",
    "stop",
    "master",
    "index",
    "path",
    "bits",
    "intensity_scale",
    "readings",
    "embed_max_bytes",
    "doc",
    "comment",
    "text",
    "provenance",
    "a",
    "photons",
    "intensity_scale (Dataset)",
    "detector",
]


@pytest.mark.parametrize("name", _CASES)
def test_bad_values_are_refused_by_name(name: str, tiny: tuple[Any, Path]) -> None:
    """Public entry points no fuzz table covers (``BlockReader.read``,
    ``recipes.derive_seed``/``dumps``/``loads``, ``io.amplitudes``,
    ``provenance.encode_array``/``seeds``/``array_sha256``, ``Dataset``'s scalars and
    ``detector``): each bad
    value is a ``ValueError``/``TypeError`` whose message names the
    argument (before the fixes: ``'<=' not supported ...``, ``AttributeError``,
    ``OverflowError``, or silently accepted, ``derive_seed(0.5, ...)`` equal to
    ``derive_seed(0, ...)``)."""
    call, values = _bad_cases(*tiny)[name]
    word = {"a": "a must", "intensity_scale (Dataset)": "intensity_scale"}.get(name, name)
    problems = [f"{word}={v!r}: {p}" for v in values if (p := _refuses(lambda v=v: call(v), word))]
    assert not problems, "\n".join(problems)


def test_zarr_region_writer_checks_its_blocks(tmp_path: Path) -> None:
    """``io.zarr.write_region`` (public; what ``distributed`` workers call): ``start`` an
    integer (``'0'``/None gave ``TypeError``s naming nothing), ``diffraction`` an array, and
    ``patches`` complex64 of ``diffraction``'s shape: a ``(1, N, N)`` block was broadcast
    into every pattern of the region and a float32 or complex128 one cast silently;
    ``chunk_rows(None)`` was an ``AttributeError``."""
    pytest.importorskip("zarr")
    import numpy as np

    from ptyfast import Experiment, io, objects, probes, scans, simulate
    from ptyfast.io import zarr as pzarr

    e = Experiment(
        objects.dead_leaves(40, seed=1), probes.gaussian(16, 3.0), scans.raster(2, 2, 4.0)
    )
    ds = simulate(e, seed=3, patches=True)
    store = tmp_path / "s.zarr"
    store.mkdir()
    pzarr.create_store(store, io.Header.from_dataset(ds), compress=False, rows=2)
    d, p = ds.diffraction[:2], ds.patches[:2]
    for kwargs, exc, name in (
        ({"start": "0"}, TypeError, "start"),
        ({"start": None}, TypeError, "start"),
        ({"start": True}, TypeError, "start"),
        ({"diffraction": None}, TypeError, "diffraction"),
        ({"patches": p[:1]}, ValueError, "patches"),
        ({"patches": p.astype(np.complex128)}, TypeError, "patches"),
        ({"patches": p.real.copy()}, TypeError, "patches"),
    ):
        args = {"start": 0, "diffraction": d, "patches": p} | kwargs
        with pytest.raises(exc, match=rf"^{name} must"):
            pzarr.write_region(store, **args)
    with pytest.raises(TypeError, match="^header must"):
        pzarr.chunk_rows(None)  # type: ignore[arg-type]
    assert pzarr.write_region(store, np.int64(0), d, p)


def test_local_client_refuses_counts_as_documented() -> None:
    """``distributed.local_client``'s Raises: ``TypeError`` for a count that is not an
    integer (documented as ``ValueError`` before), ``ValueError`` outside ``1 .. 4 × cores``;
    no cluster is started."""
    pytest.importorskip("distributed")
    from ptyfast import distributed

    for kwargs, exc in (
        ({"workers": "2"}, TypeError),
        ({"workers": True}, TypeError),
        ({"workers": 1, "threads": 2.0}, TypeError),
        ({"workers": 0}, ValueError),
        ({"workers": 10**6}, ValueError),
        ({"workers": 1, "threads": -1}, ValueError),
    ):
        name = "threads" if "threads" in kwargs else "workers"
        with pytest.raises(exc, match=rf"^{name} must be"):
            with distributed.local_client(**kwargs):
                pass  # pragma: no cover - refused before
    doc = _sections(_doc(distributed.local_client))["Raises"]
    assert {n for names, _ in _entries(doc) for n in names} >= {"TypeError", "ValueError"}


@pytest.mark.parametrize("value", ["3", True, None, 2.0, 1 + 2j])
def test_numbers_must_be_numbers(value: Any) -> None:
    """README, "Errors and limits": numbers must be numbers (``N=2.5``, ``N=True`` are
    ``TypeError``s): ``Detector.mask/pixel_map/kernel_args(N)`` and ``io.Header``'s
    ``n_patterns`` raised ``ValueError`` for them."""
    from ptyfast import Detector, io

    ds = _tiny_dataset(Detector.ideal())
    header = io.Header.from_dataset(ds)
    for call, name in (
        (lambda: Detector().mask(value), "N"),
        (lambda: Detector().pixel_map(value), "N"),
        (lambda: Detector().kernel_args(value), "N"),
        (lambda: dataclasses.replace(header, n_patterns=value), "n_patterns"),
    ):
        with pytest.raises(TypeError, match=rf"^{name} must be a"):
            call()
    with pytest.raises(ValueError, match="N must be an integer >= 2, got 1"):
        Detector().mask(1)
    with pytest.raises(ValueError, match="n_patterns must be a positive integer, got 0"):
        dataclasses.replace(header, n_patterns=0)


def test_valid_calls_still_work_and_leave_inputs_alone(tiny: tuple[Any, Path]) -> None:
    """The same entry points with valid values (numpy integers, read-only and
    non-contiguous arrays) work and modify nothing they are given."""
    import numpy as np

    from ptyfast import io
    from ptyfast.model import provenance, recipes

    ds, path = tiny
    with io.reader(path) as r:
        d, _ = r.read(np.int64(1), np.int32(3))
    assert np.array_equal(d, ds.diffraction[1:3])
    assert recipes.derive_seed(np.int64(1), np.uint8(0), "x") == recipes.derive_seed(1, 0, "x")
    assert recipes.derive_seed(1, 0, "x", bits=32) < 2**32
    big = np.zeros((2 * ds.n_patterns, ds.N, ds.N), ds.diffraction.dtype)
    big[::2] = ds.diffraction
    view = big[::2]
    view.flags.writeable = False
    before = view.copy()
    a = io.amplitudes(view, None, np.float32(ds.intensity_scale))
    assert np.array_equal(view, before) and a.dtype == np.float32
    assert np.array_equal(a, io.amplitudes(ds.diffraction, None, ds.intensity_scale))
    probe = ds.probe.copy()
    rec = provenance.encode_array(probe, embed_max_bytes=np.int64(0))
    assert rec["encoding"] == "reference" and np.array_equal(probe, ds.probe)


# --------------------------------------------------------------------------- option names


def _option_calls(tmp: Path) -> dict[tuple[str, str], Callable[[str], Any]]:
    """(callable, parameter) of each ``name : {'a', 'b'}`` header -> a call with a value."""
    from ptyfast import Detector, io, objects, probes

    header = io.Header.from_dataset(_tiny_dataset(Detector.ideal()))
    return {
        ("ptyfast.model.probes.zernike", "plane"): lambda v: probes.zernike(16, plane=v),
        ("ptyfast.model.probes.modes", "method"): lambda v: probes.modes(
            probes.gaussian(16, 3.0), 2, method=v
        ),
        ("ptyfast.model.probes.recipe", "builder"): lambda v: probes.recipe(v),
        ("ptyfast.model.objects.recipe", "family"): lambda v: objects.recipe(v, shape=16),
        ("ptyfast.io.format_from_path", "format"): lambda v: io.format_from_path("a.npz", v),
        ("ptyfast.io.writer", "format"): lambda v: io.writer(tmp / "w.npz", header, format=v),
    }


def test_enumerated_options_are_the_accepted_ones(tmp_path: Path) -> None:
    """A header ``name : {'a', 'b'}`` lists exactly the values the function accepts: an
    unknown value's error lists the same set."""
    calls = _option_calls(tmp_path)
    documented = {}
    for qual, obj in CALLABLES.items():
        sections = _sections(_doc(obj))
        for names, header in _entries(sections.get("Parameters", "")):
            m = re.search(r"\{([^}]*)\}", header)
            if m:
                for name in names:
                    documented[(qual, name)] = set(ast.literal_eval(f"[{m.group(1)}]"))
    assert set(documented) == set(calls), "a new enumerated option needs a call here"
    for key, options in sorted(documented.items()):
        with pytest.raises(ValueError, match=rf"{key[1]} must be one of") as info:
            calls[key]("__no_such_option__")
        accepted = set(ast.literal_eval(re.search(r"one of (\[[^\]]*\])", str(info.value))[1]))
        assert accepted == options, f"{key}: documented {options}, accepted {accepted}"


# --------------------------------------------------------------------------- examples, raises


@pytest.mark.parametrize(
    "modname",
    [
        "ptyfast.model.geometry",
        "ptyfast.model.detector",
        "ptyfast.io._api",
        "ptyfast.io._common",
        "ptyfast.distributed",
    ],
)
def test_docstring_examples_run(modname: str) -> None:
    """The Examples of the model-wing modules whose doctests no other test runs (probes,
    scans, objects, experiment, provenance, campaign and recipes have theirs) give what they
    print."""
    import doctest

    result = doctest.testmod(importlib.import_module(modname), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0, result


def _exception(name: str) -> type[BaseException] | None:
    import builtins

    from ptyfast import PtyfastError
    from ptyfast.io import FormatError
    from ptyfast.model import campaign, provenance, recipes

    known = {
        "PtyfastError": PtyfastError,
        "FormatError": FormatError,
        "RecipeError": recipes.RecipeError,
        "CampaignError": campaign.CampaignError,
        "ProvenanceError": provenance.ProvenanceError,
    }
    obj = known.get(name, getattr(builtins, name, None))
    return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None


def test_raises_sections_name_real_exceptions() -> None:
    """Each entry of a ``Raises`` section names exception classes that exist, and an
    ``X (Y)`` gloss (``RecipeError (ValueError)``) states a real base class."""
    problems, seen = [], 0
    for qual, obj in CALLABLES.items():
        body = _sections(_doc(obj)).get("Raises")
        if body is None:
            continue
        for names, _ in _entries(body):
            for entry in names:
                for m in re.finditer(r"(\w+)(?:\s*\((?:an? )?(\w+)\))?", entry):
                    seen += 1
                    exc, base = _exception(m.group(1)), m.group(2)
                    if exc is None:
                        problems.append(f"{qual}: Raises {m.group(1)!r} is not an exception")
                    elif base and not (_exception(base) and issubclass(exc, _exception(base))):  # type: ignore[arg-type]
                        problems.append(f"{qual}: {m.group(1)} is not a {base}")
    assert seen > 30
    assert not problems, "\n".join(problems)


def test_documented_attributes_exist(tiny: tuple[Any, Path]) -> None:
    """Every name of a class's ``Attributes`` section is an attribute of an instance."""
    from ptyfast import Experiment, io, objects, plotting, probes, scans
    from ptyfast.model import recipes

    ds, _ = tiny
    e = Experiment(
        objects.dead_leaves(40, seed=1), probes.gaussian(16, 3.0), scans.raster(2, 2, 4.0)
    )
    instances = {
        "ptyfast.Dataset": ds,
        "ptyfast.Experiment": e,
        "ptyfast.model.scans.Scan": scans.raster(2, 2, 4.0),
        "ptyfast.model.recipes.Planned": recipes.Planned(e, 1, False, "x"),
        "ptyfast.io.Header": io.Header.from_dataset(ds),
        "ptyfast.plotting.PreviewData": plotting.PreviewData.from_dataset(ds),
    }
    with_section = {
        q
        for q, obj in CALLABLES.items()
        if inspect.isclass(obj) and "Attributes" in _sections(_doc(obj))
    }
    assert with_section == set(instances), "a new class with Attributes needs an instance here"
    problems = [
        f"{q}: no attribute {name!r}"
        for q, inst in instances.items()
        for names, _ in _entries(_sections(_doc(CALLABLES[q]))["Attributes"])
        for name in names
        if not hasattr(inst, name)
    ]
    assert not problems, "\n".join(problems)


def test_compatibility_table_rows_of_the_model(tmp_path: Path) -> None:
    """COMPATIBILITY.md, rows "NPZ of a Dataset", "RawData from a Dataset" and "Poisson noise
    streams": the NPZ members, ``diff3d = sqrt(readings_to_photons(readings))/s`` (0 in
    masked pixels), true ``xcoords`` and nominal ``*_start``, ``probeGuess`` the first mode,
    and the stream recorded at ``noise_streams.poisson.stream``."""
    import numpy as np

    from ptyfast import Detector, Experiment, Geometry, io, objects, probes, scans, simulate

    g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=16)
    det = Detector.integrating(beamstop_radius_px=2.0)
    e = Experiment(
        objects.dead_leaves(40, seed=1), probes.modes(probes.gaussian(16, 3.0), 2),
        scans.raster(2, 2, 4.0).jitter(0.3, seed=4), det, photons=1e5, geometry=g,
    )  # fmt: skip
    ds = simulate(e, seed=5)
    path = tmp_path / "d.npz"
    ds.save(path)
    with np.load(path) as z:
        members = set(z.files)
        diff3d = z["diff3d"]
        assert np.array_equal(z["readings"], ds.diffraction)
        assert np.array_equal(z["probe_modes"], ds.probe)
    want = {"readings", "mask", "probe_modes", "diff3d", "xcoords", "xcoords_start"}
    want |= {"detector_distance_m", "photon_energy_eV", "detector_pixel_size_m"}
    assert want <= members, want - members
    s = np.float32(ds.intensity_scale)
    photons = np.maximum(det.readings_to_photons(ds.diffraction), 0)
    assert np.array_equal(diff3d, np.sqrt(photons).astype(np.float32) / s)
    assert np.array_equal(diff3d, io.amplitudes(ds.diffraction, det, ds.intensity_scale))
    assert np.all(diff3d[:, ~ds.mask] == 0) and (~ds.mask).any()
    raw = ds.to_raw_data()
    assert np.array_equal(raw.diff3d, diff3d)
    assert np.array_equal(raw.xcoords, ds.positions_true[:, 0])
    assert np.array_equal(raw.ycoords_start, ds.positions_nominal[:, 1])
    assert not np.array_equal(raw.xcoords, raw.xcoords_start)
    assert np.array_equal(raw.probeGuess, ds.probe[0])
    assert ds.provenance["noise_streams"]["poisson"]["stream"] == "v1"
