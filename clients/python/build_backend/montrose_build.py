"""A PEP 517 build backend in the standard library only, so `pip install ./clients/python`
works offline on any Python 3.9+: a setuptools build needs setuptools 70.1+ or `wheel` in the
build environment, which an offline machine may not have (pip's isolated build would fetch them
from PyPI). It packs src/montrose_hub into a pure-Python wheel (PEP 427) or an sdist."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME, DIST = "montrose-hub", "montrose_hub"
PACKAGE_DIR = os.path.join(ROOT, "src", DIST)


def _version() -> str:
    text = open(os.path.join(PACKAGE_DIR, "__init__.py"), encoding="utf-8").read()
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not found:
        raise RuntimeError("no __version__ in montrose_hub/__init__.py")
    return found.group(1)


def _metadata() -> str:
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {_version()}\n"
            "Summary: Montrose Hub's bridge API for Python backends, standard library only\n"
            "Requires-Python: >=3.9\nDescription-Content-Type: text/markdown\n\n" + readme)


def _package_files() -> List[Tuple[str, str]]:
    """(path in the archive, path on disk) of the package's files, sorted."""
    out = []
    for name in sorted(os.listdir(PACKAGE_DIR)):
        if name.endswith(".py") or name == "py.typed":
            out.append((f"{DIST}/{name}", os.path.join(PACKAGE_DIR, name)))
    return out


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings: Optional[Dict] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict] = None) -> List[str]:
    return []


def build_wheel(wheel_directory: str, config_settings: Optional[Dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    version = _version()
    info = f"{DIST}-{version}.dist-info"
    filename = f"{DIST}-{version}-py3-none-any.whl"
    entries: List[Tuple[str, bytes]] = [(arc, open(disk, "rb").read()) for arc, disk in _package_files()]
    entries.append((f"{info}/METADATA", _metadata().encode("utf-8")))
    entries.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: montrose_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    entries.append((f"{info}/top_level.txt", f"{DIST}\n".encode()))
    record = "\n".join([_record_line(p, d) for p, d in entries] + [f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in entries + [(f"{info}/RECORD", record.encode())]:
            wheel.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return filename


def build_sdist(sdist_directory: str, config_settings: Optional[Dict] = None) -> str:
    base = f"{DIST}-{_version()}"
    filename = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as sdist:
        def add(arc: str, data: bytes) -> None:
            item = tarfile.TarInfo(f"{base}/{arc}")
            item.size, item.mtime, item.mode = len(data), 1577836800, 0o644
            sdist.addfile(item, io.BytesIO(data))
        add("PKG-INFO", _metadata().encode("utf-8"))
        for rel in ("pyproject.toml", "README.md", "build_backend/montrose_build.py"):
            add(rel, open(os.path.join(ROOT, rel), "rb").read())
        for arc, disk in _package_files():
            add(f"src/{arc}", open(disk, "rb").read())
    return filename
