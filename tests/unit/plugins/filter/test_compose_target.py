# SPDX-License-Identifier: GPL-3.0-or-later
"""stellaops_compose through the compose_target filter: defaults from the modules' own specs, one sentence for a wrong setting."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.stellaops.deploy.plugins.filter.compose_target import FilterModule
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.target import COMPOSE_CHECKS_SPEC, COMPOSE_TARGET_SPEC
from ansible_collections.stellaops.deploy.plugins.modules.compose_deploy import ARGUMENT_SPEC

compose_target = FilterModule().filters()["compose_target"]


def test_an_empty_mapping_gets_the_defaults_of_compose_deploy_and_the_host_as_environment() -> None:
    settings = compose_target({}, "stella-1")
    assert settings == {
        "project_name": "stellaops",
        "project_dir": "/srv/stellaops",
        "docker_host": "unix:///var/run/docker.sock",
        "environment": "stella-1",
        "wait_timeout": 120,
        "health_checks": [],
        "health_retries": 10,
        "health_interval": 2.0,
    }
    # The module takes the same defaults: written once.
    for name in (*COMPOSE_TARGET_SPEC, *COMPOSE_CHECKS_SPEC):
        assert ARGUMENT_SPEC[name]["default"] == compose_target({}, "h")[name], name


def test_given_settings_are_kept_converted_and_null_means_the_default() -> None:
    checks = [{"name": "web", "type": "http", "url": "http://127.0.0.1:8080/health"}]
    settings = compose_target(
        {"project_name": "it", "project_dir": "/srv/it", "environment": "prod", "wait_timeout": "60", "health_checks": checks, "health_interval": None},
        "stella-1",
    )
    assert (settings["project_name"], settings["project_dir"], settings["environment"]) == ("it", "/srv/it", "prod")
    assert settings["wait_timeout"] == 60 and settings["health_checks"] == checks and settings["health_interval"] == 2.0
    assert compose_target(None, "stella-2")["environment"] == "stella-2"
    assert compose_target({"environment": ""}, "stella-2")["environment"] == "stella-2"


def test_the_project_dir_is_a_host_path_the_controller_does_not_expand() -> None:
    assert compose_target({"project_dir": "/srv/$HOME"}, "h")["project_dir"] == "/srv/$HOME"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"projectdir": "/srv/x"}, "stellaops_compose has no setting 'projectdir'; it takes project_name, project_dir, docker_host, environment,"),
        ({"wait_timeout": "soon"}, "stellaops_compose: argument 'wait_timeout' is of type str"),
        ({"health_checks": "web"}, "stellaops_compose: Elements value for option 'health_checks'"),
        ({"project_dir": "srv/stellaops"}, "stellaops_compose: project_dir must be an absolute path on the host, got 'srv/stellaops'."),
        ({"project_dir": "~/stellaops"}, "stellaops_compose: project_dir must be an absolute path on the host"),
        (["project_name"], "stellaops_compose must be a mapping of project_name, project_dir,"),
        ("stellaops", "stellaops_compose must be a mapping of"),
    ],
)
def test_a_wrong_setting_is_one_sentence_naming_the_variable(given: Any, said: str) -> None:
    with pytest.raises(AnsibleFilterError) as err:
        compose_target(given, "h")
    message = str(err.value)
    assert message.startswith(said), message
    assert "\n" not in message and "Traceback" not in message


class LazyMapping(Mapping):
    """Stands for the templating engine's lazy containers: copying one would copy the engine along."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        raise AssertionError("the filter deep-copied the templated variable")


def test_templated_containers_are_read_into_plain_ones_without_a_deep_copy() -> None:
    check = LazyMapping({"name": "web", "type": "http", "url": "http://127.0.0.1:8080/health"})
    settings = compose_target(LazyMapping({"project_name": "it", "health_checks": (check,)}), "stella-1")
    assert settings["project_name"] == "it"
    assert settings["health_checks"] == [{"name": "web", "type": "http", "url": "http://127.0.0.1:8080/health"}]
    assert isinstance(settings["health_checks"][0], dict)


def test_a_recursive_or_too_deep_value_is_one_sentence() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    deep: list[Any] = []
    for _level in range(200):
        deep = [deep]
    for given in ({"health_checks": cyclic}, {"health_checks": deep}):
        with pytest.raises(AnsibleFilterError) as err:
            compose_target(given, "stella-1")
        assert str(err.value) == "stellaops_compose: the value is nested more than 64 levels deep."
