# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWX objects of awx/stellaops.yml against the awx.awx modules that create them, and the
execution environment through ansible-builder.

The options are rendered by awx/configure.yml itself (its export mode) and validated with Ansible's
own ArgumentSpecValidator against the argument spec read from the installed awx.awx modules
(``make setup`` installs the collection into .tools/collections); workflow nodes are validated
against the node suboptions that awx.awx.workflow_job_template documents.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
AWX_MODULES = ROOT / ".tools" / "collections" / "ansible_collections" / "awx" / "awx" / "plugins" / "modules"
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def literal(node: ast.AST) -> Any:
    """A literal of the modules' argument spec: dict(...) calls, lists, constants."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {keyword.arg: literal(keyword.value) for keyword in node.keywords}
    if isinstance(node, ast.Dict):
        return {literal(key): literal(value) for key, value in zip(node.keys, node.values, strict=True)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(item) for item in node.elts]
    return ast.literal_eval(node)


def argument_spec(module: str) -> dict[str, Any]:
    """The ``argument_spec = dict(...)`` of an awx.awx module, read from its source."""
    tree = ast.parse((AWX_MODULES / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "argument_spec" for t in node.targets):
            return literal(node.value)
    raise AssertionError(f"awx.awx.{module} has no argument_spec")


def documented_spec(options: dict[str, Any]) -> dict[str, Any]:
    """An argument spec from documented options (type, elements, choices, required, suboptions)."""
    spec = {}
    for name, doc in options.items():
        entry = {key: doc[key] for key in ("type", "elements", "choices", "required") if key in doc}
        if "suboptions" in doc:
            entry["options"] = documented_spec(doc["suboptions"])
        spec[name] = entry
    return spec


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not AWX_MODULES.is_dir():
        pytest.fail(f"{AWX_MODULES} is missing: run 'make setup' (scripts/setup.sh installs awx.awx)")
    export = tmp_path_factory.mktemp("awx") / "export.json"
    subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(ROOT / "awx" / "configure.yml"), "-e", f"stellaops_awx_export={export}"],
        cwd=ROOT, env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, check=True, capture_output=True,
    )  # fmt: skip
    return json.loads(export.read_text())


def test_job_templates_pass_the_job_template_module_argument_spec(exported: dict[str, Any]) -> None:
    validator = ArgumentSpecValidator(argument_spec("job_template"))
    for template in exported["job_templates"]:
        result = validator.validate(template)
        assert not result.error_messages, (template["name"], result.error_messages)


def test_every_template_the_issue_names_exists_once_runs_alone_and_has_a_dry_run(exported: dict[str, Any]) -> None:
    templates = {t["name"]: t for t in exported["job_templates"]}
    assert len(templates) == len(exported["job_templates"])
    for name in ("upgrade", "rollback", "pre-flight", "promote", "drill", "backup"):
        template = templates[f"Stella Ops {name}"]
        assert template["job_type"] == "run" and template["allow_simultaneous"] is False
        assert (ROOT / template["playbook"]).is_file(), template["playbook"]
    for name in ("upgrade", "rollback", "promote", "backup"):
        assert templates[f"Stella Ops {name} (check)"]["job_type"] == "check"
    questions = {q["variable"] for q in templates["Stella Ops upgrade"]["survey_spec"]["spec"]}
    assert questions == {"channel", "release", "stellaops_serial"}


def test_surveys_are_awx_survey_specs(exported: dict[str, Any]) -> None:
    surveys = [t["survey_spec"] for t in exported["job_templates"] if t["survey_enabled"]] + [exported["workflow_job_template"]["survey_spec"]]
    assert surveys
    for survey in surveys:
        assert survey["name"] and survey["description"] and survey["spec"]
        for question in survey["spec"]:
            assert question["type"] in SURVEY_TYPES and question["question_name"] and question["variable"]
            if question["type"] == "multiplechoice":
                assert question["default"] in question["choices"]


def test_workflow_passes_its_module_spec_and_its_documented_node_options(exported: dict[str, Any]) -> None:
    workflow = exported["workflow_job_template"]
    result = ArgumentSpecValidator(argument_spec("workflow_job_template")).validate(workflow)
    assert not result.error_messages, result.error_messages
    documentation = yaml.safe_load(ast.literal_eval(next(
        node.value for node in ast.parse((AWX_MODULES / "workflow_job_template.py").read_text()).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION")))  # fmt: skip
    node_validator = ArgumentSpecValidator(documented_spec(documentation["options"]["workflow_nodes"]["suboptions"]))
    for node in workflow["workflow_nodes"]:
        checked = node_validator.validate(node)
        assert not checked.error_messages, (node["identifier"], checked.error_messages)
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    assert nodes["approval"]["unified_job_template"]["type"] == "workflow_approval"
    order = ["preflight", "approval", "backup", "upgrade", "smoke"]
    for first, then in zip(order, order[1:], strict=False):
        assert {"identifier": then} in nodes[first]["related"]["success_nodes"], (first, then)
    assert {"identifier": "rollback"} in nodes["upgrade"]["related"]["failure_nodes"]
    assert {"identifier": "rollback"} in nodes["smoke"]["related"]["failure_nodes"]
    templates = {t["name"] for t in exported["job_templates"]}
    for node in nodes.values():
        if node["unified_job_template"]["type"] == "job_template":
            assert node["unified_job_template"]["name"] in templates


def test_ansible_builder_creates_the_build_context(tmp_path: Path) -> None:
    """ansible-builder create with the collection tarball in place; the image itself needs a container engine."""
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("execution-environment.yml", "awx"):
        source = ROOT / name
        target = work / name
        if source.is_dir():
            subprocess.run(["cp", "-r", str(source), str(target)], check=True)
        else:
            target.write_text(source.read_text())
    dist = work / definition["additional_build_files"][0]["src"]
    subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(dist)], cwd=ROOT, check=True, capture_output=True
    )
    context = tmp_path / "context"
    run = subprocess.run(
        [str(VENV_BIN / "ansible-builder"), "create", "--file", "execution-environment.yml", "--context", str(context), "--output-filename", "Containerfile"],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-core==2.21.5" in containerfile and "ansible-runner==2.4.3" in containerfile
    assert "ansible-galaxy collection install --no-deps" in containerfile
    assert list((context / "_build" / "stellaops").glob("stellaops-deploy-*.tar.gz"))
    assert (context / "_build" / "requirements.yml").read_text() == (ROOT / definition["dependencies"]["galaxy"]).read_text()
