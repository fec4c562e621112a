# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's generated module table (docs/modules.md) and its role READMEs stay complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "module_list.py"
ROLES = sorted(path.parent.parent.name for path in (ROOT / "roles").glob("*/meta/argument_specs.yml"))

MODULE = '''#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: {name}
short_description: {description}
description: [A module of the test tree.]
"""
'''


def module_list(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A collection root with two modules and their generated table."""
    modules = tmp_path / "plugins" / "modules"
    modules.mkdir(parents=True)
    (modules / "__init__.py").write_text("")
    (modules / "alpha.py").write_text(MODULE.format(name="alpha", description="Do the first thing"))
    (modules / "beta.py").write_text(MODULE.format(name="beta", description="Do the second thing"))
    written = module_list("--root", str(tmp_path))
    assert written.returncode == 0, written.stderr
    return tmp_path


def test_module_table_is_current() -> None:
    result = module_list("--check")
    assert result.returncode == 0, result.stderr


def test_readme_points_to_the_module_table() -> None:
    assert "docs/modules.md" in (ROOT / "README.md").read_text()


def test_check_passes_on_a_generated_table(tree: Path) -> None:
    result = module_list("--check", "--root", str(tree))
    assert result.returncode == 0, result.stderr
    assert "2 modules, up to date" in result.stdout


def test_check_names_a_module_without_a_row(tree: Path) -> None:
    (tree / "plugins" / "modules" / "gamma.py").write_text(MODULE.format(name="gamma", description="Do a third thing"))
    result = module_list("--check", "--root", str(tree))
    assert result.returncode == 1
    assert "gamma: no row (new module)" in result.stderr


def test_check_names_a_row_without_a_module(tree: Path) -> None:
    (tree / "plugins" / "modules" / "beta.py").unlink()
    result = module_list("--check", "--root", str(tree))
    assert result.returncode == 1
    assert "beta: row for a module that does not exist" in result.stderr


def test_check_names_a_changed_short_description(tree: Path) -> None:
    (tree / "plugins" / "modules" / "alpha.py").write_text(MODULE.format(name="alpha", description="Do it differently"))
    result = module_list("--check", "--root", str(tree))
    assert result.returncode == 1
    assert "alpha: row says 'Do the first thing', its short_description is 'Do it differently'" in result.stderr


def test_check_refuses_a_hand_edit(tree: Path) -> None:
    table = tree / "docs" / "modules.md"
    table.write_text(table.read_text() + "\nA line added by hand.\n")
    result = module_list("--check", "--root", str(tree))
    assert result.returncode == 1
    assert "differs from the generated table" in result.stderr


def test_check_fails_without_the_table(tree: Path) -> None:
    (tree / "docs" / "modules.md").unlink()
    result = module_list("--check", "--root", str(tree))
    assert result.returncode == 1
    assert "docs/modules.md is missing" in result.stderr


def test_unreadable_documentation_is_an_error(tree: Path) -> None:
    (tree / "plugins" / "modules" / "alpha.py").write_text(MODULE.format(name="alpha", description="Broken: a colon: here"))
    result = module_list("--check", "--root", str(tree))
    assert result.returncode == 2
    assert "alpha.py: DOCUMENTATION is not valid YAML" in result.stderr


def test_a_pipe_in_a_description_keeps_the_table_intact(tree: Path) -> None:
    (tree / "plugins" / "modules" / "alpha.py").write_text(MODULE.format(name="alpha", description="Read a | b"))
    assert module_list("--root", str(tree)).returncode == 0
    assert r"| Read a \| b |" in (tree / "docs" / "modules.md").read_text()
    assert module_list("--check", "--root", str(tree)).returncode == 0


def test_every_role_is_found() -> None:
    assert ROLES == sorted(path.name for path in (ROOT / "roles").iterdir() if path.is_dir())


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_names_every_variable(role: str) -> None:
    """Galaxy's importer refuses a role without a README; each documents every variable of its argument specs."""
    readme = ROOT / "roles" / role / "README.md"
    assert readme.is_file(), f"roles/{role}/README.md is missing"
    text = readme.read_text()
    assert text.startswith(f"# stellaops.deploy.{role}\n")
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = {name for spec in specs.values() for name in (spec.get("options") or {})}
    options |= set(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {})
    assert options, f"roles/{role}: no options in meta/argument_specs.yml"
    missing = sorted(name for name in options if f"`{name}`" not in text)
    assert not missing, f"roles/{role}/README.md does not document {', '.join(missing)}"


def test_no_plugin_is_added_in_a_version_after_the_collections() -> None:
    version = tuple(int(part) for part in yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"].split("."))
    later = []
    for path in sorted([*(ROOT / "plugins" / "modules").glob("*.py"), *(ROOT / "plugins" / "callback").glob("*.py")]):
        for line in path.read_text().splitlines():
            if line.startswith("version_added:"):
                added = tuple(int(part) for part in line.split(":", 1)[1].strip().split("."))
                if added > version:
                    later.append(f"{path.name}: {'.'.join(map(str, added))}")
    assert not later, f"version_added after galaxy.yml's version {'.'.join(map(str, version))}: {later}"
