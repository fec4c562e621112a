# SPDX-License-Identifier: GPL-3.0-or-later
"""Release manifests: schema, normalization, strict mode, bad input, directory listing, robustness."""

from __future__ import annotations

import copy
import json
import string
from pathlib import Path
from typing import Any, Optional

import jsonschema
import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.choose import choose_release
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import (
    CHANNELS,
    find_manifest,
    list_manifests,
    load_manifest,
    newest_manifest,
    parse_manifest,
    version_key,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest_schema import release_schema
from hostile import ALIAS_BOMB, deep_flow_yaml, error_in_child, fifo, finishes, one_sentence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[4]
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

# The shape scripts/sandbox.py writes into .sandbox/releases (registry with a port, no infrastructure).
SANDBOX_STYLE = f"""release:
  version: 2025.10.0
  channel: stable
  date: '2025-10-20T00:00:00Z'
  components:
  - name: authority
    image: 127.0.0.1:5000/stellaops/authority@{D1}
  - name: signer
    image: 127.0.0.1:5000/stellaops/signer@{D2}
  upgrade:
    from:
    - 2025.09.0
  database:
    schema_version: 2
    min_schema_version: 1
    migrations:
    - id: '20251001000000'
      name: add_evidence_index
      category: A
  evidence:
    schema_version: 1
"""


UPGRADE_FACTS: dict[str, Any] = {
    "upgrade": {"from": ["2025.09.0"]},
    "database": {"schema_version": 2, "min_schema_version": 1, "migrations": [{"id": "20251001000000", "name": "add_evidence_index", "category": "A"}]},
    "evidence": {"schema_version": 1},
}


def manifest(channel: str = "edge", version: str = "2025.10.0", components: Any = None, **release: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": version,
        "channel": channel,
        "date": "2025-10-01T00:00:00Z",
        "components": components
        if components is not None
        else [
            {"name": "authority", "image": f"registry.stella-ops.org/stellaops/authority@{D1}"},
            {"name": "signer", "image": f"registry.stella-ops.org/stellaops/signer@{D2}"},
        ],
    }
    if channel in ("stable", "airgap"):
        # what strict mode requires on these channels
        body.update(copy.deepcopy(UPGRADE_FACTS))
    body.update(release)
    return {"release": body}


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def error_of(text: str, **kwargs: Any) -> StellaOpsError:
    with pytest.raises(StellaOpsError) as info:
        parse_manifest(text, "deploy/releases/x.yaml", **kwargs)
    return info.value


# --------------------------------------------------------------------------- good input


def test_sandbox_style_manifest_is_accepted_as_written() -> None:
    release = parse_manifest(SANDBOX_STYLE, "s.yaml", strict=True, channel="stable")
    assert release.release_id == "2025.10.0-stable"
    assert release.date == "2025-10-20T00:00:00Z"
    authority = release.component("authority")
    assert authority is not None
    assert authority.repository == "127.0.0.1:5000/stellaops/authority"
    assert authority.digest == D1 and authority.tag is None and authority.pinned
    assert release.component("nope") is None


def test_normalized_dict_is_json_and_complete() -> None:
    text = dump(manifest(infrastructure={"postgres": {"image": f"docker.io/library/postgres:16.4@{D3}"}}))
    data = parse_manifest(text, "m.yaml").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["release_id"] == "2025.10.0-edge" and data["path"] == "m.yaml"
    assert [c["name"] for c in data["components"]] == ["authority", "signer"]
    assert data["infrastructure"] == [
        {
            "name": "postgres",
            "image": f"docker.io/library/postgres:16.4@{D3}",
            "repository": "docker.io/library/postgres",
            "tag": "16.4",
            "digest": D3,
            "pinned": True,
        }
    ]


def test_unquoted_yaml_timestamp_is_normalized_to_text() -> None:
    text = dump(manifest()).replace("'2025-10-01T00:00:00Z'", "2025-10-01T00:00:00Z")
    assert parse_manifest(text, "m.yaml").date == "2025-10-01T00:00:00Z"


def test_edge_allows_tags_unless_strict() -> None:
    text = dump(manifest(components=[{"name": "authority", "image": "registry.stella-ops.org/stellaops/authority:2025.10.0"}]))
    assert parse_manifest(text, "m.yaml").components[0].tag == "2025.10.0"
    assert "strict mode requires digests" in str(error_of(text, strict=True))


def test_unknown_keys_pass_by_default_and_fail_in_strict() -> None:
    data = manifest()
    data["release"]["components"][0]["owner"] = "team-a"
    text = dump(data)
    assert parse_manifest(text, "m.yaml").components[0].name == "authority"
    err = error_of(text, strict=True)
    assert str(err).startswith("deploy/releases/x.yaml: release.components[0] has unknown field 'owner'")


def test_strict_refuses_repeated_yaml_keys_with_position() -> None:
    text = dump(manifest()).replace("channel: edge\n", "channel: edge\n  channel: stable\n")
    assert parse_manifest(text, "m.yaml").channel == "stable"
    assert "line 4, column 3: duplicate key 'channel'" in str(error_of(text, strict=True))


def test_strict_refuses_a_repository_used_twice() -> None:
    components = [
        {"name": "authority", "image": f"registry.stella-ops.org/stellaops/authority@{D1}"},
        {"name": "authority-legacy", "image": f"registry.stella-ops.org/stellaops/authority@{D2}"},
    ]
    text = dump(manifest(components=components))
    assert len(parse_manifest(text, "m.yaml").components) == 2
    assert "already used by release.components[0]" in str(error_of(text, strict=True))


# --------------------------------------------------------------------------- bad input


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError) as info:
        load_manifest(str(tmp_path / "2025.10.0-edge.yaml"))
    assert str(info.value) == f"{tmp_path}/2025.10.0-edge.yaml: release manifest not found."
    assert info.value.details["kind"] == "unreadable"


def test_yaml_syntax_error_reports_line_and_column() -> None:
    text = "release:\n  version: '1.0.0'\n  channel: edge\n  components: [\n    {name: a, image: x/a:1\n"
    err = error_of(text)
    assert str(err).startswith("deploy/releases/x.yaml: YAML syntax error at line 6, column 1:")
    assert err.details["kind"] == "invalid"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["release"].update(version=2025.1), "release.version must be a string, got a number 2025.1 (quote it in YAML)"),
        (lambda d: d["release"].update(components={"a": 1}), "release.components must be a list, got a mapping"),
        (lambda d: d["release"]["components"][1].update(name=7), "release.components[1].name must be a string, got an integer 7"),
        (lambda d: d["release"].update(infrastructure=["pg"]), "release.infrastructure must be a mapping, got a list"),
        (lambda d: d["release"].update(channel="beta"), "release.channel is 'beta'; expected one of edge, stable, airgap"),
        (lambda d: d["release"].pop("channel"), "release.channel is missing; it is required"),
        (lambda d: d["release"].update(components=[]), "release.components must list at least 1 item(s)"),
        (lambda d: d["release"].update(version="v1"), "release.version is 'v1'; expected release version such as 2025.10.0"),
        (lambda d: d["release"].update(date="yesterday"), "release.date is 'yesterday'; expected release date"),
        (
            lambda d: d["release"]["components"][0].update(image="registry.stella-ops.org/stellaops/authority@sha256:abc"),
            "release.components[0].image: image reference 'registry.stella-ops.org/stellaops/authority@sha256:abc' has a malformed digest 'sha256:abc'",
        ),
        (
            lambda d: d["release"]["components"][1].update(name="authority"),
            "release.components[1].name 'authority' duplicates release.components[0]; component names must be unique",
        ),
        (lambda d: d.update(release="2025"), "release must be a mapping, got a string '2025'"),
    ],
)
def test_bad_input_gives_one_sentence_naming_file_and_field(mutate: Any, expected: str) -> None:
    data = manifest()
    mutate(data)
    err = error_of(dump(data))
    message = str(err)
    assert message.startswith("deploy/releases/x.yaml: ")
    assert expected in message
    assert message.endswith(".") and "\n" not in message
    assert err.details["kind"] == "invalid"


@pytest.mark.parametrize("channel", ["stable", "airgap"])
def test_pinned_channels_refuse_tags(channel: str) -> None:
    data = manifest(channel=channel, infrastructure={"postgres": {"image": "docker.io/library/postgres:16"}})
    err = error_of(dump(data))
    assert str(err) == (
        "deploy/releases/x.yaml: release.infrastructure.postgres.image 'docker.io/library/postgres:16' is not pinned by digest; "
        f"expected repository@sha256:<64 hex> (channel {channel} requires digests)."
    )


@pytest.mark.parametrize("text", ["", "# nothing\n", "- a\n- b\n", "release:\n", "42\n"])
def test_empty_or_wrong_documents(text: str) -> None:
    assert str(error_of(text)).startswith("deploy/releases/x.yaml: ")


def test_expected_channel_must_match() -> None:
    assert "release.channel is 'edge'; expected 'stable'" in str(error_of(dump(manifest()), channel="stable"))
    err = error_of(dump(manifest()), channel="nightly")
    assert err.details["kind"] == "usage" and "'nightly' is unknown" in str(err)


def test_file_name_channel_must_match_content(tmp_path: Path) -> None:
    path = tmp_path / "2025.10.0-stable.yaml"
    path.write_text(dump(manifest(channel="edge")))
    with pytest.raises(StellaOpsError, match="the file name says 'stable'"):
        load_manifest(str(path))


def test_not_utf8_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"release: \xff\xfe\n")
    with pytest.raises(StellaOpsError, match="not UTF-8") as info:
        load_manifest(str(path))
    assert info.value.details["kind"] == "invalid"


def test_directory_instead_of_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match="is a directory") as info:
        load_manifest(str(tmp_path))
    assert info.value.details["kind"] == "unreadable"


# --------------------------------------------------------------------------- directories and versions


def write_release(directory: Path, version: str, channel: str) -> None:
    (directory / f"{version}-{channel}.yaml").write_text(dump(manifest(channel=channel, version=version)))


def test_versions_sort_numerically(tmp_path: Path) -> None:
    for version in ("2025.9.3", "2025.10.0", "2025.10.0-rc1", "2025.2.11"):
        write_release(tmp_path, version, "edge")
    write_release(tmp_path, "2026.1.0", "stable")
    (tmp_path / "README.md").write_text("not a manifest")
    assert [r.version for r in list_manifests(str(tmp_path), "edge")] == ["2025.2.11", "2025.9.3", "2025.10.0-rc1", "2025.10.0"]
    assert newest_manifest(str(tmp_path), "edge").version == "2025.10.0"
    assert newest_manifest(str(tmp_path), "stable").version == "2026.1.0"
    assert find_manifest(str(tmp_path), "edge", "2025.9.3").source == str(tmp_path / "2025.9.3-edge.yaml")
    assert version_key("2025.10.0") > version_key("2025.9.3")


def test_find_manifest_lists_available_versions(tmp_path: Path) -> None:
    write_release(tmp_path, "2025.9.3", "edge")
    write_release(tmp_path, "2025.10.0", "edge")
    with pytest.raises(StellaOpsError) as info:
        find_manifest(str(tmp_path), "edge", "2025.11.0")
    assert str(info.value) == f"{tmp_path}: no release manifest for version '2025.11.0' on channel 'edge'; available: 2025.9.3, 2025.10.0."


def test_the_release_chosen_says_whether_the_running_version_upgrades_to_it_directly(tmp_path: Path) -> None:
    """release_manifest's running option: the path judged on the channel's releases; the task itself does not fail."""
    for version, upgrades_from in (("2025.9.0", []), ("2025.10.0", ["2025.9.0"]), ("2025.11.0", ["2025.10.0"])):
        document = manifest(channel="stable", version=version)
        document["release"]["upgrade"] = {"from": upgrades_from}
        (tmp_path / f"{version}-stable.yaml").write_text(dump(document))
    params = {"path": None, "directory": str(tmp_path), "channel": "stable", "version": "2025.11.0", "strict": True}
    assert choose_release({**params, "running": "2025.9.0"})["path_problem"] == "2025.9.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first"
    assert choose_release({**params, "running": "2025.10.0"})["path_problem"] is None
    assert choose_release({**params, "running": "2025.11.0"})["path_problem"] is None
    assert not choose_release({**params, "running": "2025.10.0"})["older_than_running"]
    newer = choose_release({**params, "version": "2025.10.0", "running": "2025.11.0"})
    assert newer["path_problem"] is None and newer["older_than_running"]  # a return: judged by the rollback, not here
    assert "path_problem" not in choose_release({**params, "running": None})


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match="no release manifest <version>-airgap.yaml"):
        newest_manifest(str(tmp_path), "airgap")
    with pytest.raises(StellaOpsError, match="directory not found"):
        list_manifests(str(tmp_path / "missing"), "edge")
    with pytest.raises(StellaOpsError, match="Channel 'beta' is unknown"):
        list_manifests(str(tmp_path), "beta")


def test_deploy_tree_manifests_are_valid_in_strict_mode() -> None:
    directory = str(ROOT / "deploy" / "releases")
    for channel in CHANNELS:
        releases = list_manifests(directory, channel, strict=True)
        assert releases, channel
        assert all(c.pinned for r in releases for c in r.images())
    assert newest_manifest(directory, "stable").version == "2025.09.2"


# --------------------------------------------------------------------------- the published schema


@pytest.mark.parametrize(("strict", "name"), [(False, "release-manifest.schema.json"), (True, "release-manifest.strict.schema.json")])
def test_published_schema_equals_the_loader_schema(strict: bool, name: str) -> None:
    published = json.loads((ROOT / "docs" / "schemas" / name).read_text())
    assert published == release_schema(strict)
    jsonschema.Draft202012Validator.check_schema(published)


def test_schema_alone_enforces_digests_on_stable() -> None:
    validator = jsonschema.Draft202012Validator(release_schema())
    stable = manifest(channel="stable", components=[{"name": "a", "image": "x/a:1"}])
    edge = manifest(channel="edge", components=[{"name": "a", "image": "x/a:1"}])
    assert not validator.is_valid(stable)
    assert validator.is_valid(edge)
    assert not jsonschema.Draft202012Validator(release_schema(strict=True)).is_valid(edge)


# --------------------------------------------------------------------------- robustness (hypothesis)

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["edge", "stable", "airgap", "x/a:1", f"x/a@{D1}", "x/a@sha256:zz", "2025.10.0", "@", ":", "/"]),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=20,
)
FIELDS = ["version", "channel", "date", "components", "infrastructure", "name", "image", "release", "extra"]


def assert_only_stellaops_errors(text: str, strict: bool) -> None:
    try:
        release = parse_manifest(text, "fuzz.yaml", strict=strict)
    except StellaOpsError as err:
        message = str(err)
        assert message.startswith("fuzz.yaml") or message.startswith("Expected channel")
        assert "\n" not in message
    else:
        json.dumps(release.to_dict())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=string.printable, max_size=300), strict=st.booleans())
def test_random_text_never_crashes_the_loader(text: str, strict: bool) -> None:
    assert_only_stellaops_errors(text, strict)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    channel=st.sampled_from([*CHANNELS, "beta"]),
    path=st.lists(st.one_of(st.sampled_from(FIELDS), st.integers(0, 3)), min_size=1, max_size=4),
    value=json_value,
    strict=st.booleans(),
)
def test_mutated_manifests_never_crash_the_loader(channel: str, path: list[Any], value: Any, strict: bool) -> None:
    data: Any = manifest(channel=channel, infrastructure={"postgres": {"image": f"docker.io/library/postgres@{D3}"}})
    node = data
    for step in path[:-1]:
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
    last = path[-1]
    if isinstance(node, dict):
        node[str(last)] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value
    assert_only_stellaops_errors(dump(data), strict)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 400), insert=st.text(alphabet=string.printable, max_size=5), strict=st.booleans())
def test_truncated_and_spliced_manifests_never_crash_the_loader(cut: int, insert: str, strict: bool) -> None:
    text = SANDBOX_STYLE
    cut = min(cut, len(text))
    assert_only_stellaops_errors(text[:cut] + insert + text[cut:], strict)
    assert_only_stellaops_errors(text[:cut], strict)


# --------------------------------------------------------------------------- hostile manifests (issue 10)

PUBLISHED = {
    strict: json.loads((ROOT / "docs" / "schemas" / name).read_text())
    for strict, name in ((False, "release-manifest.schema.json"), (True, "release-manifest.strict.schema.json"))
}
LOAD = "__import__('ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest', fromlist=['x']).load_manifest"


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["release"].update(version="2025.10.0\n"), "release.version is '2025.10.0\\n'"),
        (lambda d: d["release"]["components"][0].update(name="authority\n"), "release.components[0].name is 'authority\\n'"),
        (lambda d: d["release"].update(date="2025-10-01\n"), "release.date is '2025-10-01\\n'"),
        (
            lambda d: d["release"].update(infrastructure={"postgres\n": {"image": f"docker.io/library/postgres@{D3}"}}),
            "release.infrastructure has an invalid name 'postgres\\n'; expected lowercase",
        ),
    ],
)
def test_a_trailing_newline_never_passes_a_pattern(mutate: Any, field: str, strict: bool) -> None:
    data = manifest()
    mutate(data)
    one_sentence(error_of(dump(data), strict=strict), "deploy/releases/x.yaml: ", field)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["release"].update(version="2025.10.0\n"),
        lambda d: d["release"]["components"][0].update(name="authority\n"),
        lambda d: d["release"].update(date="2025-10-01T00:00:00Z\n"),
        lambda d: d["release"]["components"][0].update(image=f"registry.stella-ops.org/stellaops/authority@{D1}\n"),
        lambda d: d["release"].update(infrastructure={"pg\n": {"image": f"docker.io/library/postgres@{D3}"}}),
    ],
)
def test_the_published_schema_alone_refuses_a_trailing_newline(mutate: Any, strict: bool) -> None:
    data = manifest(channel="stable")
    validator = jsonschema.Draft202012Validator(PUBLISHED[strict])
    assert validator.is_valid(data)
    mutate(data)
    assert not validator.is_valid(data)


@settings(max_examples=200, deadline=None)
@given(
    version=st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3}){1,3}(-[0-9A-Za-z][0-9A-Za-z.]{0,5})?", fullmatch=True),
    tail=st.sampled_from(["\n", "\n\n", " ", "\r\n", "\t"]),
)
def test_a_version_is_valid_exactly_without_trailing_characters(version: str, tail: str) -> None:
    validator = jsonschema.Draft202012Validator(PUBLISHED[False])
    assert validator.is_valid(manifest(version=version))
    assert not validator.is_valid(manifest(version=version + tail))
    assert parse_manifest(dump(manifest(version=version)), "m.yaml").version == version
    with pytest.raises(StellaOpsError, match="release.version is"):
        parse_manifest(dump(manifest(version=version + tail)), "m.yaml")


def test_the_version_in_the_file_name_must_equal_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "2025.10.0-edge.yaml"
    path.write_text(dump(manifest(version="2025.11.0")))
    message = one_sentence(finishes(lambda: load_manifest(str(path))))
    assert message == f"{path}: release.version is '2025.11.0' but the file name says '2025.10.0'; name the file <version>-<channel>.yaml."
    one_sentence(finishes(lambda: list_manifests(str(tmp_path), "edge")), "the file name says '2025.10.0'")
    renamed = tmp_path / "2025.11.0-edge.yaml"
    path.rename(renamed)
    assert load_manifest(str(renamed)).version == "2025.11.0"


def test_anchors_and_aliases_are_refused_in_a_manifest() -> None:
    text = dump(manifest()).replace("channel: edge", "channel: &c edge\n  x-channel: *c")
    one_sentence(error_of(text), "deploy/releases/x.yaml: YAML an anchor &c at line 3, column 12 is not allowed here")


def test_an_alias_bomb_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "2025.10.0-edge.yaml"
    bomb = "".join(f"  {line}\n" for line in ALIAS_BOMB.splitlines())
    path.write_text(f"x:\n{bomb}release:\n  version: *i\n  channel: edge\n  components: [{{name: a, image: x/a:1}}]\n")
    for strict in (False, True):
        message = error_in_child(f"{LOAD}({str(path)!r}, strict={strict})")
        assert message == f"{path}: YAML an anchor &a at line 2, column 6 is not allowed here; write the value out in full."


def test_a_deeply_nested_manifest_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "2025.10.0-edge.yaml"
    path.write_text("release:\n  version: '2025.10.0'\n  channel: edge\n  components:\n" + deep_flow_yaml().replace("x: ", "  - "))
    message = error_in_child(f"{LOAD}({str(path)!r})")
    assert message.startswith(f"{path}: YAML is nested more than 64 levels deep at line 5, column ")


def test_a_fifo_or_a_device_as_a_manifest_is_refused(tmp_path: Path) -> None:
    path = fifo(tmp_path / "2025.10.0-edge.yaml")
    one_sentence(finishes(lambda: load_manifest(str(path)), path), f"{path}: release manifest is a FIFO; expected a regular file")
    one_sentence(finishes(lambda: list_manifests(str(tmp_path), "edge"), path), "is a FIFO")
    zero = tmp_path / "2025.11.0-stable.yaml"
    zero.symlink_to("/dev/zero")
    message = error_in_child(f"{LOAD}({str(zero)!r})")
    assert message == f"{zero}: release manifest is a character device; expected a regular file."


# --------------------------------------------------------------------------- upgrade path, database, evidence


def test_upgrade_database_and_evidence_are_read_and_returned() -> None:
    release = parse_manifest(dump(manifest(channel="stable")), "deploy/releases/2025.10.0-stable.yaml", strict=True)
    assert release.upgrades_from == ("2025.09.0",)
    assert (release.schema_version, release.min_schema_version, release.evidence_schema_version) == (2, 1, 1)
    assert [(m.id, m.category) for m in release.migrations] == [("20251001000000", "A")]
    data = release.to_dict()
    assert data["upgrade"] == {"from": ["2025.09.0"]} and data["evidence"] == {"schema_version": 1}
    assert data["database"]["migrations"] == [{"id": "20251001000000", "name": "add_evidence_index", "category": "A"}]
    # Outside strict mode, and on edge, a manifest need not say them: the release says None.
    loose = parse_manifest(dump(manifest()), "m.yaml", strict=True)
    assert loose.upgrades_from is None and loose.schema_version is None and loose.to_dict()["upgrade"] is None


@pytest.mark.parametrize("channel", ["stable", "airgap"])
@pytest.mark.parametrize("missing", ["upgrade", "database", "evidence"])
def test_strict_mode_requires_each_on_the_pinned_channels(channel: str, missing: str) -> None:
    data = manifest(channel=channel)
    del data["release"][missing]
    one_sentence(
        error_of(dump(data), strict=True),
        "deploy/releases/x.yaml: ",
        f"release.{missing} is missing; strict mode requires upgrade, database and evidence on the {channel} channel",
    )
    assert parse_manifest(dump(data), "m.yaml").channel == channel  # not strict: accepted


@pytest.mark.parametrize(
    ("mutate", "said"),
    [
        (lambda d: d["release"]["database"].update(min_schema_version=3), "release.database.min_schema_version 3 is above schema_version 2"),
        (lambda d: d["release"]["database"]["migrations"].append({"id": "20251001000000", "category": "B"}), "migrations[1].id '20251001000000' repeats"),
        (lambda d: d["release"]["database"]["migrations"][0].update(category="C"), "release.database.migrations[0].category is 'C'; expected one of A, B"),
        (lambda d: d["release"]["upgrade"].update({"from": ["2025.09"]}), None),
        (lambda d: d["release"]["upgrade"].update({"from": ["next"]}), "release.upgrade.from[0] is 'next'"),
        (lambda d: d["release"]["database"].update(schema_version=True), "release.database.schema_version"),
        (lambda d: d["release"]["evidence"].update(schema_version=0), "release.evidence.schema_version"),
    ],
)
def test_upgrade_facts_that_cannot_be_are_one_sentence(mutate: Any, said: Optional[str]) -> None:
    data = manifest(channel="stable")
    mutate(data)
    if said is None:
        assert parse_manifest(dump(data), "m.yaml", strict=True).upgrades_from == ("2025.09",)
        return
    one_sentence(error_of(dump(data), strict=True), "deploy/releases/x.yaml: ", said)
