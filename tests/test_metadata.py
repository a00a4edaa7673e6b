"""Package metadata: the Python versions we claim agree with each other and with the image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SUPPORTED = ["3.11", "3.12", "3.13"]


def test_requires_python_admits_exactly_the_supported_versions():
    spec = SpecifierSet(PYPROJECT["project"]["requires-python"])
    for minor in SUPPORTED:
        assert spec.contains(Version(f"{minor}.0")) and spec.contains(Version(f"{minor}.9"))
    for outside in ("3.10.14", "3.14.0"):
        assert not spec.contains(Version(outside)), outside


def test_classifiers_agree_with_requires_python():
    classifiers = PYPROJECT["project"]["classifiers"]
    minors = sorted(
        m[1]
        for c in classifiers
        if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))
    )
    assert minors == SUPPORTED


def test_license_is_an_spdx_expression_and_setuptools_can_read_it():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    (setuptools,) = [
        Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")
    ]
    # setuptools reads a string `license` (PEP 639) from 77.0 on.
    assert not setuptools.specifier.contains("76.1.0") and setuptools.specifier.contains("77.0.3")


def test_dockerfile_default_python_is_supported():
    text = (REPO / "Dockerfile").read_text()
    (default,) = re.findall(r"^ARG PYTHON_VERSION=(\d+\.\d+)$", text, flags=re.M)
    assert default in SUPPORTED
