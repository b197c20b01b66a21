"""environment.yml (conda) mirrors pyproject.toml (pip), and the Makefile pins the same torch."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from nasoa_lib.paths import PROJECT_ROOT

PINNED_BY_ENV = {"torch", "torchvision"}  # exact local builds in environment.yml and the Makefile


def _pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def _requirements(lines) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    out = {canonicalize_name(r.name): r for r in reqs}
    assert len(out) == len(reqs), f"duplicate requirement in {lines}"
    return out


def _environment() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())


def _env_pip_lines() -> list[str]:
    pips = [d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, "environment.yml needs exactly one pip: list"
    return pips[0]


def test_environment_pip_list_matches_pyproject():
    project = _pyproject()["project"]
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["dev"])
    lines = _env_pip_lines()
    assert "-e ." in lines, "environment.yml must install the project itself (-e .)"
    have = _requirements([line for line in lines if not line.startswith("-")])
    assert set(have) == set(wanted), (
        f"only in environment.yml: {sorted(set(have) - set(wanted))}; "
        f"only in pyproject.toml: {sorted(set(wanted) - set(have))}"
    )
    for name, req in wanted.items():
        if name in PINNED_BY_ENV:
            pins = [s for s in have[name].specifier if s.operator == "=="]
            assert pins, f"{name} must be pinned (==) in environment.yml"
            assert req.specifier.contains(Version(pins[0].version)), (
                f"environment.yml pins {name}=={pins[0].version}, outside pyproject's {req.specifier}"
            )
        else:
            assert have[name].specifier == req.specifier, (
                f"{name}: environment.yml {have[name].specifier} vs pyproject {req.specifier}"
            )


def test_environment_python_satisfies_requires_python():
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    pythons = [d for d in _environment()["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pythons) == 1
    version = pythons[0].split("=")[-1]
    assert requires.contains(Version(version)), f"python={version} vs requires-python {requires}"


def test_makefile_installs_the_torch_pinned_in_environment_yml():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    env = _requirements([line for line in _env_pip_lines() if not line.startswith("-")])
    for name in PINNED_BY_ENV:
        pin = next(s.version for s in env[name].specifier if s.operator == "==")
        assert re.search(rf"\b{name}=={re.escape(pin)}\b", makefile), (
            f"Makefile does not install {name}=={pin} (environment.yml's pin)"
        )
