"""Keep the environment files in agreement with each other.

- pyproject.toml [project].dependencies and envs/requirements.in: the same
  packages with the same version ranges;
- envs/requirements.lock: every package pinned with ==, and the pins satisfy
  requirements.in;
- envs/urbaneo.yaml (conda): every top-level package, under its conda-forge
  name (or in the pip: section), at exactly the version pinned in the lock,
  and nothing else.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
REQUIREMENTS_IN = ROOT / "envs" / "requirements.in"
LOCK = ROOT / "envs" / "requirements.lock"
CONDA_ENV = ROOT / "envs" / "urbaneo.yaml"

# PyPI name (canonical) -> conda-forge name, where they differ.
CONDA_NAMES = {
    "osmium": "pyosmium",
    "torch": "pytorch",
    "netcdf4": "netcdf4",
    "torch-geometric": "pytorch_geometric",
}
# Conda entries that are not Python packages of requirements.in.
CONDA_EXTRAS = {"python", "pip"}

_CONDA_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(?:(?P<op>==?)\s*(?P<version>\S+))?$")


def _requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _requirements(lines: list[str], where: str) -> dict[str, Requirement]:
    reqs: dict[str, Requirement] = {}
    for line in lines:
        req = Requirement(line)
        key = canonicalize_name(req.name)
        assert key not in reqs, f"{where}: {req.name} listed twice"
        reqs[key] = req
    return reqs


def requirements_in() -> dict[str, Requirement]:
    return _requirements(_requirement_lines(REQUIREMENTS_IN), "envs/requirements.in")


def pyproject_dependencies() -> dict[str, Requirement]:
    data = tomllib.loads(PYPROJECT.read_text())["project"]
    return _requirements(data["dependencies"] + data["optional-dependencies"]["test"], "pyproject.toml")


def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in _requirement_lines(LOCK):
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"requirements.lock: {line!r} is not pinned with =="
        assert not req.extras and req.marker is None and req.url is None, f"requirements.lock: {line!r}"
        key = canonicalize_name(req.name)
        assert key not in pins, f"requirements.lock: {req.name} pinned twice"
        pins[key] = specs[0].version
    return pins


def conda_env() -> dict:
    return yaml.safe_load(CONDA_ENV.read_text())


def conda_packages() -> dict[str, tuple[str, str | None]]:
    """conda-name (or canonical pip name) -> (section, version)."""
    packages: dict[str, tuple[str, str | None]] = {}
    for dep in conda_env()["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"urbaneo.yaml: unexpected entry {dep}"
            for line in dep["pip"]:
                req = Requirement(line)
                specs = list(req.specifier)
                version = specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None
                key = canonicalize_name(req.name)
                assert key not in packages, f"urbaneo.yaml: {req.name} listed twice"
                packages[key] = ("pip", version)
        else:
            m = _CONDA_SPEC.match(str(dep).strip())
            assert m, f"urbaneo.yaml: cannot parse {dep!r}"
            key = m["name"].lower()
            assert key not in packages, f"urbaneo.yaml: {m['name']} listed twice"
            packages[key] = ("conda", m["version"])
    return packages


TOP_LEVEL = sorted(requirements_in())


def test_pyproject_dependencies_equal_requirements_in():
    pyproject = pyproject_dependencies()
    req_in = requirements_in()
    assert sorted(set(pyproject) - set(req_in)) == [], "in pyproject.toml but not in envs/requirements.in"
    assert sorted(set(req_in) - set(pyproject)) == [], "in envs/requirements.in but not in pyproject.toml"
    differing = {
        name: (str(pyproject[name].specifier), str(req_in[name].specifier))
        for name in req_in
        if pyproject[name].specifier != req_in[name].specifier
    }
    assert differing == {}, "version ranges differ (pyproject.toml, requirements.in)"


def test_lock_is_fully_pinned_and_excludes_urbaneo():
    pins = lock_pins()
    assert len(pins) > len(TOP_LEVEL), "the lock should hold the transitive packages too"
    assert "urbaneo" not in pins


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_lock_pin_satisfies_requirements_in(name):
    pins = lock_pins()
    req = requirements_in()[name]
    assert name in pins, f"{req.name} is in requirements.in but not pinned in requirements.lock"
    assert req.specifier.contains(Version(pins[name]), prereleases=True), (
        f"requirements.lock pins {req.name}=={pins[name]}, outside requirements.in's {req.specifier}"
    )


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_conda_env_pins_lock_version(name):
    pins = lock_pins()
    packages = conda_packages()
    conda_name = CONDA_NAMES.get(name, name)
    if conda_name in packages:
        section, version = packages[conda_name]
    elif name in packages:  # pip: section uses the PyPI name
        section, version = packages[name]
    else:
        pytest.fail(f"{name} (conda-forge: {conda_name}) is missing from envs/urbaneo.yaml")
    assert version is not None, f"envs/urbaneo.yaml: {conda_name} has no exact version ({section} section)"
    assert version == pins[name], (
        f"envs/urbaneo.yaml pins {conda_name}={version} ({section} section), "
        f"requirements.lock pins {name}=={pins[name]}"
    )


def test_conda_env_has_nothing_but_top_level_packages():
    expected = {CONDA_NAMES.get(name, name) for name in TOP_LEVEL} | set(TOP_LEVEL) | CONDA_EXTRAS
    extra = sorted(set(conda_packages()) - expected)
    assert extra == [], "in envs/urbaneo.yaml but not in envs/requirements.in"


def test_conda_env_channels_and_python():
    env = conda_env()
    assert env["channels"] == ["conda-forge", "nodefaults"]
    packages = conda_packages()
    assert packages.get("python") == ("conda", "3.11")
    if any(section == "pip" for section, _ in packages.values()):
        assert "pip" in packages, "a pip: section needs pip among the conda dependencies"
