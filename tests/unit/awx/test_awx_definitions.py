"""The AWX/Tower objects as code (awx/controller.yml) against the awx.awx modules that apply them.

Each definition is validated with Ansible's own argument-spec validator against the argument
spec the awx.awx module really builds (captured from the module's ``main``), as the module would
do on the controller; then what the modules cannot see: every job template names a playbook of
this collection, every survey question is one AWX accepts and sets a variable that playbook
reads, the workflow's nodes name existing templates and identifiers, and ``playbooks/awx.yml``
passes every parameter the definitions use.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from unittest import mock

import jinja2
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = Path(__file__).resolve().parents[3]
DEFINITIONS = ROOT / "awx" / "controller.yml"
APPLY = ROOT / "playbooks" / "awx.yml"
# What the site passes on the command line (the file's default is empty on purpose).
EXTRA = {"awx_project_scm_url": "https://git.example.org/ops/backendai.git"}
SECTIONS = {
    "awx_execution_environments": "execution_environment",
    "awx_projects": "project",
    "awx_inventories": "inventory",
    "awx_inventory_sources": "inventory_source",
    "awx_job_templates": "job_template",
    "awx_workflows": "workflow_job_template",
}
# The survey question types AWX accepts (awx/main/models/mixins.py, SurveyJobTemplateMixin).
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice",
                "multiselect"}


class _Captured(Exception):
    pass


def argument_spec(module: str) -> dict:
    """The argument spec awx.awx's ``module`` builds, with the connection options it adds."""
    mod = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{module}")
    api = importlib.import_module("ansible_collections.awx.awx.plugins.module_utils.controller_api")

    def capture(argument_spec=None, **_kwargs):
        raise _Captured(argument_spec)

    with mock.patch.object(mod, "ControllerAPIModule", capture):
        try:
            mod.main()
        except _Captured as exc:
            return {**api.ControllerModule.AUTH_ARGSPEC, **exc.args[0]}
    raise AssertionError(f"awx.awx.{module} built no argument spec")


def _render(value, context: dict):
    if isinstance(value, str) and "{{" in value:
        return jinja2.Template(value, undefined=jinja2.StrictUndefined).render(**context)
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def defs() -> dict:
    raw = {**yaml.safe_load(DEFINITIONS.read_text()), **EXTRA}
    scalars = {k: v for k, v in raw.items() if not isinstance(v, (list, dict))}
    out = _render(raw, scalars)
    common = out["awx_job_template_common"]
    out["awx_job_templates"] = [{**common, **t} for t in out["awx_job_templates"]]
    return out


def _entries(defs: dict):
    for section, module in SECTIONS.items():
        for entry in defs[section]:
            yield pytest.param(section, module, entry["name"], id=f"{module}:{entry['name']}")


def _validate(module: str, params: dict) -> list[str]:
    result = ArgumentSpecValidator(argument_spec(module)).validate(params)
    return [str(e) for e in result.errors]


@pytest.mark.parametrize("section,module", SECTIONS.items())
def test_every_definition_passes_the_modules_argument_spec(defs, section, module):
    assert defs[section], f"{section} is empty"
    for entry in defs[section]:
        assert _validate(module, entry) == [], (module, entry["name"])


def test_the_validation_refuses_what_the_module_would_refuse(defs):
    template = dict(defs["awx_job_templates"][0])
    assert _validate("job_template", {**template, "job_type": "deploy"})
    assert _validate("job_template", {**template, "playbok": "site.yml"})
    assert _validate("workflow_job_template", {"name": "x", "workflow_nodes": "precheck"})


def test_every_job_template_runs_a_playbook_of_the_collection(defs):
    for template in defs["awx_job_templates"]:
        assert (ROOT / template["playbook"]).is_file(), template


def _playbook_reads(playbook: str, variable: str) -> bool:
    text = (ROOT / playbook).read_text()
    return re.search(rf"\b{re.escape(variable)}\b", text) is not None


def test_every_survey_question_is_one_awx_takes_and_the_playbook_reads(defs):
    surveys = [t for t in defs["awx_job_templates"] if t.get("survey_enabled")]
    assert surveys, "no job template has a survey"
    for template in surveys:
        spec = template["survey_spec"]
        assert spec.get("name") and isinstance(spec.get("spec"), list), template["name"]
        variables = [q["variable"] for q in spec["spec"]]
        assert len(variables) == len(set(variables)), variables
        for question in spec["spec"]:
            assert question["type"] in SURVEY_TYPES, question
            assert question.get("question_name"), question
            assert isinstance(question.get("required"), bool), question
            if question["type"] in ("multiplechoice", "multiselect"):
                choices = question["choices"]
                assert isinstance(choices, list) and choices, question
                assert question.get("default", "") in ["", *choices], question
            assert _playbook_reads(template["playbook"], question["variable"]), (
                f"{template['playbook']} never reads {question['variable']}")


def _workflow_node_keys() -> set[str]:
    mod = importlib.import_module(
        "ansible_collections.awx.awx.plugins.modules.workflow_job_template")
    doc = yaml.safe_load(mod.DOCUMENTATION)
    return set(doc["options"]["workflow_nodes"]["suboptions"])


def test_the_workflow_nodes_name_existing_templates_and_nodes(defs):
    templates = {t["name"] for t in defs["awx_job_templates"]}
    allowed = _workflow_node_keys()
    for workflow in defs["awx_workflows"]:
        nodes = workflow["workflow_nodes"]
        ids = [n["identifier"] for n in nodes]
        assert len(ids) == len(set(ids)), ids
        for node in nodes:
            assert set(node) <= allowed, set(node) - allowed
            ujt = node["unified_job_template"]
            assert ujt["type"] == "job_template" and ujt["name"] in templates, ujt
            for edge in ("success_nodes", "failure_nodes", "always_nodes"):
                for target in node.get("related", {}).get(edge, []):
                    assert target["identifier"] in ids, (node["identifier"], target)
    chain = [n["unified_job_template"]["name"] for n in defs["awx_workflows"][0]["workflow_nodes"]]
    assert chain == ["Backend.AI: precheck", "Backend.AI: deploy", "Backend.AI: verify"], chain


def test_the_apply_playbook_passes_every_parameter_the_definitions_use(defs):
    (play,) = yaml.safe_load(APPLY.read_text())
    assert play["vars_files"] == ["../awx/controller.yml"]
    passed = {}
    for task in play["tasks"]:
        for key, args in task.items():
            if key.startswith("awx.awx."):
                passed[key.removeprefix("awx.awx.")] = set(args)
    for section, module in SECTIONS.items():
        assert module in passed, f"playbooks/awx.yml has no awx.awx.{module} task"
        for entry in defs[section]:
            missing = set(entry) - passed[module]
            assert not missing, (module, entry["name"], sorted(missing))
