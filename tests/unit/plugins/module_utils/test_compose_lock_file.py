# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose lock: pinned images, labels and environment, deterministic bytes, digest and tampering."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deployments import check_kept_lock, sha256_text
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.lock_file import (
    build_lock,
    check_lock,
    image_changes,
    load_template,
    lock_digest,
    parse_compose_yaml,
    render_lock,
    require_intact_lock,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import Release, parse_manifest
from hostile import ALIAS_BOMB, deep_flow_yaml, error_in_child, finishes, one_sentence

REG = "127.0.0.1:5000/stellaops"


def digest(char: str) -> str:
    return "sha256:" + char * 64


def manifest(version: str, channel: str, images: dict[str, str]) -> Release:
    components = "".join(f"    - name: {name}\n      image: {image}\n" for name, image in images.items())
    text = f'release:\n  version: "{version}"\n  channel: {channel}\n  components:\n{components}'
    return parse_manifest(text, f"{version}-{channel}.yaml")


RELEASE_A = manifest(
    "2025.09.0",
    "stable",
    {"authority": f"{REG}/authority@{digest('a')}", "scanner-web": f"{REG}/scanner-web@{digest('b')}", "notify": f"{REG}/notify@{digest('c')}"},
)
RELEASE_B = manifest(
    "2025.10.0",
    "stable",
    {"authority": f"{REG}/authority@{digest('d')}", "scanner-web": f"{REG}/scanner-web@{digest('b')}", "notify": f"{REG}/notify@{digest('e')}"},
)

TEMPLATE = """\
name: stellaops
x-common: &common
  restart: unless-stopped
  environment:
    STELLAOPS_ENVIRONMENT: ${STELLAOPS_ENVIRONMENT:-sandbox}
services:
  authority:
    <<: *common
    ports:
      - 8080:80
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 2s
    env_file: [stellaops.env]
    volumes: ["authority-data:/data"]
    labels:
      team: identity
  web:
    x-stella-component: scanner-web
    image: ignored/by-the-lock:latest
    environment:
      - DEBUG=yes
      - PASSTHROUGH
      - EMPTY=
    labels:
      - "tier=front"
      - "stella.digest=forged"
  notify:
volumes:
  authority-data: {}
"""


def lock_of(release: Release = RELEASE_A, template: str = TEMPLATE, promotion_id: str = "") -> dict[str, Any]:
    return build_lock(
        release, load_template(template, "stellaops.yaml"), template_sha256=sha256_text(template), promotion_id=promotion_id,
        source="stellaops.yaml",
    )


def test_images_labels_and_environment() -> None:
    lock = lock_of()
    auth = lock["services"]["authority"]
    assert auth["image"] == f"{REG}/authority@{digest('a')}"
    assert auth["labels"] == {
        "team": "identity",
        "stella.release.id": "2025.09.0-stable",
        "stella.component.name": "authority",
        "stella.digest": digest("a"),
        "stella.channel": "stable",
        "stella.service.hash": auth["labels"]["stella.service.hash"],
    }
    assert auth["environment"] == {
        "STELLAOPS_ENVIRONMENT": "${STELLAOPS_ENVIRONMENT:-sandbox}",
        "STELLA_RELEASE_ID": "2025.09.0-stable",
        "STELLA_DIGEST": digest("a"),
    }
    # every other key of the template survives, including merged anchors
    assert auth["ports"] == ["8080:80"]
    assert auth["restart"] == "unless-stopped"
    assert auth["healthcheck"]["interval"] == "2s"
    assert auth["env_file"] == ["stellaops.env"]
    assert auth["volumes"] == ["authority-data:/data"]
    assert lock["volumes"] == {"authority-data": {}}
    assert lock["name"] == "stellaops"
    notify = lock["services"]["notify"]
    assert notify["image"] == f"{REG}/notify@{digest('c')}"


def test_x_stella_component_maps_service_to_component() -> None:
    web = lock_of()["services"]["web"]
    assert web["image"] == f"{REG}/scanner-web@{digest('b')}"
    assert web["labels"]["stella.component.name"] == "scanner-web"
    assert "x-stella-component" not in web
    # the manifest wins over a forged label in the template
    assert web["labels"]["stella.digest"] == digest("b")
    assert web["labels"]["tier"] == "front"


def test_environment_list_becomes_mapping() -> None:
    web = lock_of()["services"]["web"]
    assert web["environment"] == {
        "DEBUG": "yes",
        "PASSTHROUGH": None,
        "EMPTY": "",
        "STELLA_RELEASE_ID": "2025.09.0-stable",
        "STELLA_DIGEST": digest("b"),
    }


def test_lock_block_and_digest_definition() -> None:
    lock = lock_of(promotion_id="promo-42")
    meta = lock["x-stella-lock"]
    assert meta["release"] == "2025.09.0"
    assert meta["release_id"] == "2025.09.0-stable"
    assert meta["channel"] == "stable"
    assert meta["promotion_id"] == "promo-42"
    assert meta["template_sha256"] == hashlib.sha256(TEMPLATE.encode()).hexdigest()
    # computed independently from the definition: canonical JSON without the digest itself
    without = copy.deepcopy(lock)
    del without["x-stella-lock"]["digest"]
    canonical = json.dumps(without, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert meta["digest"] == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert lock_digest(lock) == meta["digest"]


def test_same_inputs_give_byte_identical_output() -> None:
    first = render_lock(lock_of())
    second = render_lock(lock_of())
    assert first == second
    # the order of services and keys in the template does not matter either
    parsed = load_template(TEMPLATE, "stellaops.yaml")
    reordered = {key: parsed[key] for key in reversed(list(parsed))}
    reordered["services"] = {name: parsed["services"][name] for name in reversed(list(parsed["services"]))}
    assert list(reordered["services"]) != list(parsed["services"])
    a = build_lock(RELEASE_A, reordered, template_sha256=sha256_text(TEMPLATE))
    assert render_lock(a) == first


def test_rendered_lock_round_trips_and_checks_valid() -> None:
    lock = lock_of()
    text = render_lock(lock)
    assert parse_compose_yaml(text, "lock") == lock
    status = check_lock(text, "lock.yml")
    assert status.valid
    assert status.digest == status.computed == lock["x-stella-lock"]["digest"]
    assert status.release_id == "2025.09.0-stable"
    assert status.services["web"] == {
        "image": f"{REG}/scanner-web@{digest('b')}",
        "component": "scanner-web",
        "digest": digest("b"),
        "service_hash": lock["services"]["web"]["labels"]["stella.service.hash"],
    }


def test_yaml_1_2_scalars_are_kept_as_compose_reads_them() -> None:
    text = render_lock(lock_of())
    # PyYAML's default (YAML 1.1) would have read 8080:80 as the base-60 number 484880 and yes as true
    assert "484880" not in text
    reparsed = yaml.safe_load(text)
    assert reparsed["services"]["authority"]["ports"] == ["8080:80"]
    assert reparsed["services"]["web"]["environment"]["DEBUG"] == "yes"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (f"image: {REG}/notify@{digest('c')}", f"image: {REG}/notify@{digest('f')}"),
        ("STELLA_RELEASE_ID: 2025.09.0-stable", "STELLA_RELEASE_ID: 2025.10.0-stable"),
        ("restart: unless-stopped", "restart: always"),
    ],
)
def test_edits_are_detected_as_tampering(old: str, new: str) -> None:
    text = render_lock(lock_of())
    assert old in text
    edited = text.replace(old, new, 1)
    status = check_lock(edited, "lock.yml")
    assert not status.valid
    assert status.digest == lock_of()["x-stella-lock"]["digest"]
    assert status.computed != status.digest


def test_comment_and_whitespace_edits_are_not_tampering() -> None:
    text = render_lock(lock_of())
    assert check_lock("# reviewed by ops\n" + text + "\n\n", "lock.yml").valid


@pytest.mark.parametrize("text", ["", "not: [valid", "- a list\n", "services: {}\n"])
def test_text_that_is_not_a_lock_is_invalid(text: str) -> None:
    status = check_lock(text, "lock.yml")
    assert not status.valid and status.digest is None


def test_unknown_service_error_names_service_and_template() -> None:
    template = TEMPLATE + "  gateway:\n    ports: ['443:443']\n"
    template = template.replace("volumes:\n  authority-data: {}\n", "") + "volumes:\n  authority-data: {}\n"
    with pytest.raises(StellaOpsError) as caught:
        lock_of(template=template)
    message = str(caught.value)
    assert message.startswith("stellaops.yaml: service gateway has no component 'gateway' in release 2025.09.0-stable")
    assert "components: authority, scanner-web, notify" in message


def test_unknown_x_stella_component_names_both() -> None:
    template = TEMPLATE.replace("x-stella-component: scanner-web", "x-stella-component: scanner")
    with pytest.raises(StellaOpsError, match=r"stellaops.yaml: service web has no component 'scanner' \(named by x-stella-component\)"):
        lock_of(template=template)


def test_unpinned_component_is_refused() -> None:
    edge = manifest("2025.11.0", "edge", {"authority": f"{REG}/authority:2025.11.0", "scanner-web": f"{REG}/scanner-web@{digest('1')}"})
    template = "services:\n  authority: {}\n"
    with pytest.raises(StellaOpsError, match=r"2025.11.0-edge.yaml: component authority image .* is not pinned by digest"):
        build_lock(edge, load_template(template, "t.yaml"), template_sha256="x")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- a\n", "must be a mapping with a 'services' key"),
        ("services: []\n", "field services must be a non-empty mapping"),
        ("services:\n  a: [1]\n", "services.a must be a mapping"),
        ("services:\n  authority: {environment: 5}\n", "services.authority: environment must be a mapping or a list"),
        ("services:\n  authority:\n   bad: [\n", "YAML syntax error at line"),
    ],
)
def test_bad_templates(text: str, error: str) -> None:
    with pytest.raises(StellaOpsError, match=error):
        build_lock(RELEASE_A, load_template(text, "t.yaml"), template_sha256="x", source="t.yaml")


def test_image_changes_between_releases() -> None:
    old, new = lock_of(RELEASE_A), lock_of(RELEASE_B)
    assert image_changes(old, new) == [
        {"service": "authority", "before": f"{REG}/authority@{digest('a')}", "after": f"{REG}/authority@{digest('d')}"},
        {"service": "notify", "before": f"{REG}/notify@{digest('c')}", "after": f"{REG}/notify@{digest('e')}"},
    ]
    assert image_changes(new, new) == []
    first = image_changes(None, new)
    assert [c["service"] for c in first] == ["authority", "notify", "web"]
    assert all(c["before"] is None for c in first)
    smaller = copy.deepcopy(new)
    del smaller["services"]["notify"]
    assert image_changes(new, smaller) == [{"service": "notify", "before": f"{REG}/notify@{digest('e')}", "after": None}]


def test_service_hash_changes_with_the_definition_only() -> None:
    a = lock_of()
    changed_port = lock_of(template=TEMPLATE.replace("8080:80", "8081:80"))
    assert a["services"]["authority"]["labels"]["stella.service.hash"] != changed_port["services"]["authority"]["labels"]["stella.service.hash"]
    assert a["services"]["notify"]["labels"]["stella.service.hash"] == changed_port["services"]["notify"]["labels"]["stella.service.hash"]


# --------------------------------------------------------------------------- hostile templates (issue 10)


def test_an_alias_bomb_template_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "template.yml"
    bomb = "".join(f"  {line}\n" for line in ALIAS_BOMB.splitlines())
    path.write_text(f"x-bomb:\n{bomb}services:\n  authority:\n    labels: *i\n")
    module = "__import__('ansible_collections.stellaops.deploy.plugins.module_utils.compose.lock_file', fromlist=['x'])"
    message = error_in_child(f"{module}.load_template(open({str(path)!r}).read(), {str(path)!r})")
    assert message.startswith(f"{path}: YAML expands to more than 250000 values at line ")
    assert check_lock(path.read_text(), str(path)).valid is False


@pytest.mark.parametrize("text", [deep_flow_yaml(), "services:\n  a:\n" + "".join("  " * (i + 2) + "k:\n" for i in range(5000))])
def test_a_deeply_nested_template_is_one_sentence(text: str) -> None:
    one_sentence(finishes(lambda: load_template(text, "template.yml")), "template.yml: YAML is nested more than 64 levels deep")
    assert finishes(lambda: check_lock(text, "lock.yml")).valid is False


def test_shared_blocks_within_the_bound_are_kept() -> None:
    shared = "x-env: &env {A: '1', B: '2'}\nservices:\n" + "".join(f"  s{i}:\n    environment: *env\n" for i in range(50))
    assert all(service["environment"] == {"A": "1", "B": "2"} for service in load_template(shared, "t.yml")["services"].values())


# --------------------------------------------------------------------------- locks read back (issue 10)


def test_a_lock_given_as_text_must_match_its_digest() -> None:
    text = render_lock(build_lock(RELEASE_A, load_template(TEMPLATE, "t.yml"), template_sha256="0" * 64))
    assert require_intact_lock(text, "lock").valid
    swapped = text.replace(f"{REG}/authority@{digest('a')}", f"evil.example/authority@{digest('f')}")
    assert swapped != text
    one_sentence(finishes(lambda: require_intact_lock(swapped, "lock")), "lock: the compose lock does not match its own digest (recorded sha256:")
    one_sentence(finishes(lambda: require_intact_lock("services: {}\n", "lock")), "recorded None")
    one_sentence(finishes(lambda: require_intact_lock(deep_flow_yaml(), "lock")), "recorded None, computed None")


def test_a_kept_lock_must_still_have_the_recorded_sha256() -> None:
    text = render_lock(build_lock(RELEASE_A, load_template(TEMPLATE, "t.yml"), template_sha256="0" * 64))
    check_kept_lock(text, sha256_text(text), "kept/docker-compose.lock.yaml")
    check_kept_lock(text, None, "kept/docker-compose.lock.yaml")  # kept before the sha256 was recorded
    for recorded in (sha256_text(text + " "), "", 17):
        one_sentence(
            finishes(lambda recorded=recorded: check_kept_lock(text, recorded, "kept/docker-compose.lock.yaml")),
            "kept/docker-compose.lock.yaml: the compose lock no longer matches the sha256 recorded when it was kept",
        )
