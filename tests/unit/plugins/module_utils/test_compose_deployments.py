# SPDX-License-Identifier: GPL-3.0-or-later
"""Kept deployments: the env file, deployment ids, the store on disk (write, find, bookmark, prune)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deployments import (
    ENV_FILE,
    LOCK_FILE,
    META_FILE,
    DeploymentStore,
    check_deployment_id,
    render_env,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from hypothesis import given, settings
from hypothesis import strategies as st

RELEASE = "2025.10.0-stable"
HEADER = "# Settings of one deployment, read by docker compose; holds secrets (mode 0600).\n"
LOCK = "services:\n  authority:\n    image: 127.0.0.1:5000/stellaops/authority@sha256:" + "a" * 64 + "\n"
HASHES = {"authority": "1" * 64, "signer": "2" * 64}


@pytest.fixture
def umask() -> Iterator[None]:
    """A usual umask, so that the modes asserted below are the modes the code asks for."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def meta(hashes: Optional[dict[str, str]] = None, created_at: str = "2025-11-22T04:00:00.000000Z", **extra: Any) -> dict[str, Any]:
    return {"release_id": RELEASE, "config_hashes": HASHES if hashes is None else hashes, "created_at": created_at, **extra}


def parse_env(text: str) -> dict[str, str]:
    """Read back the KEY='value' lines the way Compose reads single-quoted values: verbatim."""
    values = {}
    for line in text.split("\n")[:-1]:  # lines end at \n only, as in Compose's env file parser
        if line.startswith("#"):
            continue
        key, quoted = line.split("=", 1)
        assert quoted[0] == "'" and quoted[-1] == "'" and "'" not in quoted[1:-1]
        values[key] = quoted[1:-1]
    return values


# --------------------------------------------------------------------------- render_env


def test_render_env_sorts_quotes_and_merges_secrets_over_settings() -> None:
    text = render_env(
        {"STELLAOPS_LOG_LEVEL": "info", "AUTHORITY_URL": "http://authority:80", "DB_PASSWORD": "from-settings"},
        {"DB_PASSWORD": "s3cret"},
    )
    assert text == HEADER + "AUTHORITY_URL='http://authority:80'\nDB_PASSWORD='s3cret'\nSTELLAOPS_LOG_LEVEL='info'\n"


def test_render_env_keeps_dollar_literal_inside_single_quotes() -> None:
    text = render_env({"PATTERN": "a$b ${HOME} $$ \\n"}, {"DB_PASSWORD": "p$ss${X}w"})
    assert "PATTERN='a$b ${HOME} $$ \\n'\n" in text
    assert "DB_PASSWORD='p$ss${X}w'\n" in text


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (None, ""), (0, "0"), (8080, "8080"), (1.5, "1.5"), ("", ""), ("with space", "with space")],
)
def test_render_env_scalars(value: Any, text: str) -> None:
    assert render_env({"KEY": value}, {}) == HEADER + f"KEY='{text}'\n"


@pytest.mark.parametrize("bad", ["it's", "line\nbreak", "carriage\rreturn", "'"])
@pytest.mark.parametrize("where", ["settings", "secrets"])
def test_value_an_env_file_cannot_carry_is_one_clear_error(where: str, bad: str) -> None:
    value = "TOPSECRET-" + bad
    args: dict[str, dict[str, str]] = {"settings": {"OTHER": "x"}, "secrets": {}}
    args[where]["DB_PASSWORD"] = value
    with pytest.raises(StellaOpsError) as caught:
        render_env(args["settings"], args["secrets"])
    message = str(caught.value)
    assert message == f"{where}: the value of DB_PASSWORD holds a quote or a line break, which an env file cannot carry."
    assert "TOPSECRET" not in message


def test_a_secret_overriding_a_setting_is_blamed_as_a_secret() -> None:
    with pytest.raises(StellaOpsError, match=r"^secrets: the value of DB_PASSWORD "):
        render_env({"DB_PASSWORD": "fine"}, {"DB_PASSWORD": "it's"})


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A B", "", "A=B", "Ä", "A.B", "$A"])
def test_invalid_variable_names(key: str) -> None:
    with pytest.raises(StellaOpsError) as caught:
        render_env({key: "v"}, {})
    assert str(caught.value) == f"settings: {key!r} is not a variable name (letters, digits and _, not starting with a digit)."


def test_non_string_key_is_refused() -> None:
    with pytest.raises(StellaOpsError, match="is not a variable name"):
        render_env({5: "v"}, {})  # type: ignore[dict-item]


@pytest.mark.parametrize("key", ["A", "_", "_A1", "a_b_C9"])
def test_valid_variable_names(key: str) -> None:
    assert render_env({key: "v"}, {}) == HEADER + f"{key}='v'\n"


env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
env_values = st.text(st.characters(exclude_characters="'\n\r", exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=150, deadline=None)
@given(settings_=st.dictionaries(env_keys, env_values, max_size=8), secrets=st.dictionaries(env_keys, env_values, max_size=4))
def test_render_env_round_trips_and_ignores_insertion_order(settings_: dict[str, str], secrets: dict[str, str]) -> None:
    text = render_env(settings_, secrets)
    assert parse_env(text) == {**settings_, **secrets}
    assert text == render_env(dict(reversed(settings_.items())), dict(reversed(secrets.items())))
    keys = [line.split("=", 1)[0] for line in text.split("\n")[1:-1]]
    assert keys == sorted(keys)


# --------------------------------------------------------------------------- deployment ids


@pytest.mark.parametrize("good", [f"{RELEASE}+1", "2025.11.0-edge+12", "a+0", "A_b.c-d+99"])
def test_check_deployment_id_accepts(good: str) -> None:
    assert check_deployment_id(good) == good


@pytest.mark.parametrize("bad", [RELEASE, f"{RELEASE}+", "+1", f"{RELEASE}+x", f"../{RELEASE}+1", f"{RELEASE}+1/..", ".hidden+1", "a b+1", ""])
def test_check_deployment_id_refuses(bad: str) -> None:
    with pytest.raises(StellaOpsError) as caught:
        check_deployment_id(bad)
    assert str(caught.value) == f"deployment_id {bad!r} is not a deployment id (<release_id>+<number>)."


def test_store_refuses_path_like_ids(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    with pytest.raises(StellaOpsError, match="is not a deployment id"):
        store.path("../../etc+1/x")
    with pytest.raises(StellaOpsError, match="is not a deployment id"):
        store.meta("../outside+1")


# --------------------------------------------------------------------------- write, read, find


def test_write_lays_out_the_deployment_with_modes(tmp_path: Path, umask: None) -> None:
    store = DeploymentStore(str(tmp_path / "project"))
    env = render_env({"LOG": "info"}, {"DB_PASSWORD": "s3cret"})
    store.write(f"{RELEASE}+1", LOCK, env, meta())
    directory = tmp_path / "project" / "deployments" / f"{RELEASE}+1"
    assert sorted(p.name for p in directory.iterdir()) == sorted([LOCK_FILE, ENV_FILE, META_FILE])
    assert (directory / LOCK_FILE).read_text() == LOCK
    assert (directory / ENV_FILE).read_text() == env
    assert json.loads((directory / META_FILE).read_text()) == meta()
    assert (directory / META_FILE).read_text() == json.dumps(meta(), indent=2, sort_keys=True) + "\n"
    assert mode(directory / ENV_FILE) == 0o600
    assert mode(directory / LOCK_FILE) == 0o644
    assert mode(directory / META_FILE) == 0o644
    assert mode(directory) == 0o755
    assert store.ids() == [f"{RELEASE}+1"]
    assert store.meta(f"{RELEASE}+1") == meta()
    assert store.content(f"{RELEASE}+1") == (LOCK, env)


def test_settings_env_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        DeploymentStore(str(tmp_path)).write(f"{RELEASE}+1", LOCK, "A='b'\n", meta())
    finally:
        os.umask(old)
    assert mode(tmp_path / "deployments" / f"{RELEASE}+1" / ENV_FILE) == 0o600


def test_failed_write_leaves_no_staging_directory_and_no_deployment(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    with pytest.raises(TypeError):
        store.write(f"{RELEASE}+1", LOCK, "A='b'\n", {"config_hashes": HASHES, "bad": object()})
    assert os.listdir(tmp_path / "deployments") == []
    assert store.ids() == []


def test_write_never_replaces_a_kept_deployment(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    store.write(f"{RELEASE}+1", LOCK, "A='old'\n", meta())
    with pytest.raises(OSError):
        store.write(f"{RELEASE}+1", LOCK, "A='new'\n", meta())
    assert store.content(f"{RELEASE}+1") == (LOCK, "A='old'\n")
    assert os.listdir(tmp_path / "deployments") == [f"{RELEASE}+1"]


def test_ids_ignore_staging_files_and_strangers(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    assert store.ids() == []
    for name in (f"{RELEASE}+2", f"{RELEASE}+10", "2025.09.0-stable+1", ".staging-abc", "notes", f"{RELEASE}"):
        (tmp_path / "deployments" / name).mkdir(parents=True)
    (tmp_path / "deployments" / f"{RELEASE}+3").write_text("a file, not a deployment")
    assert store.ids() == ["2025.09.0-stable+1", f"{RELEASE}+10", f"{RELEASE}+2"]


def test_meta_and_content_errors_name_the_file(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    with pytest.raises(StellaOpsError, match=r"^Deployment 2025\.10\.0-stable\+1 is not kept on this host \(.*deployment\.json does not exist\)\.$"):
        store.meta(f"{RELEASE}+1")
    with pytest.raises(StellaOpsError, match=r"^Deployment 2025\.10\.0-stable\+1 is not kept on this host \(.*2025\.10\.0-stable\+1 does not exist\)\.$"):
        store.content(f"{RELEASE}+1")
    directory = tmp_path / "deployments" / f"{RELEASE}+1"
    directory.mkdir(parents=True)
    (directory / META_FILE).write_text("{not json")
    with pytest.raises(StellaOpsError, match=r"deployment\.json: cannot read the deployment record"):
        store.meta(f"{RELEASE}+1")
    (directory / META_FILE).write_text(json.dumps({"config_hashes": ["a"]}))
    with pytest.raises(StellaOpsError, match=r"deployment\.json: field config_hashes must be a mapping"):
        store.meta(f"{RELEASE}+1")
    (directory / LOCK_FILE).write_text(LOCK)
    with pytest.raises(StellaOpsError, match=r"is incomplete: No such file or directory: .*settings\.env\.$"):
        store.content(f"{RELEASE}+1")


def test_find_returns_the_identical_deployment_only(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    env_info = render_env({"LOG": "info"}, {"DB_PASSWORD": "s3cret"})
    env_debug = render_env({"LOG": "debug"}, {"DB_PASSWORD": "s3cret"})
    store.write(f"{RELEASE}+1", LOCK, env_info, meta())
    store.write(f"{RELEASE}+2", LOCK, env_debug, meta())
    store.write("2025.11.0-edge+1", LOCK, env_info, meta())
    assert store.find(RELEASE, LOCK, env_info) == f"{RELEASE}+1"
    assert store.find(RELEASE, LOCK, env_debug) == f"{RELEASE}+2"
    assert store.find("2025.11.0-edge", LOCK, env_info) == "2025.11.0-edge+1"
    # another secret, another setting, another lock, another release: not kept
    assert store.find(RELEASE, LOCK, render_env({"LOG": "info"}, {"DB_PASSWORD": "rotated"})) is None
    assert store.find(RELEASE, LOCK, render_env({"LOG": "warn"}, {"DB_PASSWORD": "s3cret"})) is None
    assert store.find(RELEASE, LOCK + "# edited\n", env_info) is None
    assert store.find("2025.09.0-stable", LOCK, env_info) is None
    # a release id that is a prefix of another is not confused with it
    assert store.find("2025.10.0", LOCK, env_info) is None


def test_find_skips_an_incomplete_deployment(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    store.write(f"{RELEASE}+1", LOCK, "A='b'\n", meta())
    os.unlink(tmp_path / "deployments" / f"{RELEASE}+1" / ENV_FILE)
    store.write(f"{RELEASE}+2", LOCK, "A='b'\n", meta())
    assert store.find(RELEASE, LOCK, "A='b'\n") == f"{RELEASE}+2"


def test_next_id_numbers_per_release(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    assert store.next_id(RELEASE) == f"{RELEASE}+1"
    for name in (f"{RELEASE}+1", f"{RELEASE}+2", f"{RELEASE}+10", "2025.11.0-edge+40"):
        (tmp_path / "deployments" / name).mkdir(parents=True, exist_ok=True)
    assert store.next_id(RELEASE) == f"{RELEASE}+11"  # numeric, not lexical: +10 < +11
    assert store.next_id("2025.11.0-edge") == "2025.11.0-edge+41"
    assert store.next_id("2025.09.0-stable") == "2025.09.0-stable+1"
    with pytest.raises(StellaOpsError, match="is not a deployment id"):
        store.next_id("../evil")


# --------------------------------------------------------------------------- current, bookmark


def test_current_and_point_current(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    assert store.current() is None
    store.write(f"{RELEASE}+1", LOCK, "A='b'\n", meta())
    store.write(f"{RELEASE}+2", LOCK, "A='c'\n", meta())
    assert store.point_current(f"{RELEASE}+1") is True
    assert os.readlink(tmp_path / "current") == f"deployments/{RELEASE}+1"
    assert (tmp_path / "current" / ENV_FILE).read_text() == "A='b'\n"
    assert store.current() == f"{RELEASE}+1"
    assert store.point_current(f"{RELEASE}+1") is False
    assert store.point_current(f"{RELEASE}+2") is True
    assert store.current() == f"{RELEASE}+2"
    assert sorted(os.listdir(tmp_path)) == ["current", "deployments"]  # no current.new left behind
    with pytest.raises(StellaOpsError, match="is not a deployment id"):
        store.point_current("../../etc+1/x")
    assert store.current() == f"{RELEASE}+2"


def test_current_ignores_a_link_that_names_no_deployment(tmp_path: Path) -> None:
    os.symlink("somewhere-else", tmp_path / "current")
    assert DeploymentStore(str(tmp_path)).current() is None
    (tmp_path / "current").unlink()
    (tmp_path / "current").mkdir()  # a directory, not a link
    assert DeploymentStore(str(tmp_path)).current() is None


def test_bookmark_is_the_deployment_whose_hashes_equal_the_running_ones(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    other = {"authority": "3" * 64, "signer": "2" * 64}
    store.write(f"{RELEASE}+1", LOCK, "A='1'\n", meta(HASHES))
    store.write(f"{RELEASE}+2", LOCK, "A='2'\n", meta(other))
    assert store.bookmark(HASHES) == f"{RELEASE}+1"
    assert store.bookmark(other) == f"{RELEASE}+2"
    assert store.bookmark({}) is None
    assert store.bookmark({"authority": "1" * 64}) is None  # a subset is not the deployment
    assert store.bookmark({**HASHES, "notify": "4" * 64}) is None  # nor is a superset
    assert store.bookmark({"authority": "1" * 64, "signer": None}) is None  # replicas that disagree


def test_bookmark_prefers_current_among_equal_deployments(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    # same hashes, e.g. a setting that no service reads was changed
    for n in (1, 2, 3):
        store.write(f"{RELEASE}+{n}", LOCK, f"UNUSED='{n}'\n", meta(HASHES))
    assert store.bookmark(HASHES) == f"{RELEASE}+1"
    store.point_current(f"{RELEASE}+2")
    assert store.bookmark(HASHES) == f"{RELEASE}+2"
    store.point_current(f"{RELEASE}+3")
    assert store.bookmark(HASHES) == f"{RELEASE}+3"


def test_bookmark_skips_unreadable_records(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    store.write(f"{RELEASE}+1", LOCK, "A='1'\n", meta(HASHES))
    store.write(f"{RELEASE}+2", LOCK, "A='2'\n", meta(HASHES))
    store.point_current(f"{RELEASE}+1")
    (tmp_path / "deployments" / f"{RELEASE}+1" / META_FILE).write_text("garbled")
    assert store.bookmark(HASHES) == f"{RELEASE}+2"


# --------------------------------------------------------------------------- prune


def kept(store: DeploymentStore, count: int) -> list[str]:
    for n in range(1, count + 1):
        store.write(f"{RELEASE}+{n}", LOCK, f"A='{n}'\n", meta(created_at=f"2025-11-22T04:00:{n:02d}.000000Z"))
    return [f"{RELEASE}+{n}" for n in range(1, count + 1)]


def test_prune_removes_the_oldest_beyond_keep(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    ids = kept(store, 12)
    removed = store.prune(3, (None,))
    assert sorted(removed) == sorted(ids[:9])
    assert sorted(store.ids()) == sorted(ids[9:])


def test_prune_never_removes_protected_ids(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    ids = kept(store, 6)
    removed = store.prune(2, (ids[0], ids[2]))
    assert sorted(removed) == sorted([ids[1], ids[3]])
    assert sorted(store.ids()) == sorted([ids[0], ids[2], ids[4], ids[5]])


def test_prune_keeps_at_least_one(tmp_path: Path) -> None:
    store = DeploymentStore(str(tmp_path))
    ids = kept(store, 3)
    assert sorted(store.prune(0, (None,))) == sorted(ids[:2])
    assert store.ids() == [ids[2]]
    assert store.prune(5, (None,)) == []


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(0, 8),
    keep=st.integers(-1, 9),
    protect=st.lists(st.integers(1, 8), max_size=3),
    order=st.randoms(use_true_random=False),
)
def test_prune_property(tmp_path_factory: pytest.TempPathFactory, count: int, keep: int, protect: list[int], order: Any) -> None:
    store = DeploymentStore(str(tmp_path_factory.mktemp("prune")))
    stamps = list(range(count))
    order.shuffle(stamps)  # creation order independent of the id numbers
    created = {}
    for n, stamp in zip(range(1, count + 1), stamps, strict=True):
        created[f"{RELEASE}+{n}"] = stamp
        store.write(f"{RELEASE}+{n}", LOCK, f"A='{n}'\n", meta(created_at=f"2025-11-22T04:00:{stamp:02d}.000000Z"))
    protected = tuple(f"{RELEASE}+{n}" for n in protect)
    removed = store.prune(keep, protected)
    newest = sorted(created, key=created.__getitem__, reverse=True)[: max(keep, 1)]
    assert set(store.ids()) == (set(newest) | (set(protected) & set(created)))
    assert set(removed) == set(created) - set(store.ids())
    assert not set(removed) & set(protected)
