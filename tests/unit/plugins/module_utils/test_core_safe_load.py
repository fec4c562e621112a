# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile input: regular files only, bounded size, YAML without alias bombs or deep nesting, bounded JSON."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.safe_load import (
    MAX_DEPTH,
    check_yaml_shape,
    display_name,
    file_sha256,
    open_regular,
    parse_json,
    parse_yaml,
    read_bytes,
    read_json,
    read_text,
)
from hostile import ALIAS_BOMB, deep_flow_yaml, deep_json, fifo, finishes, one_sentence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# --------------------------------------------------------------------------- files


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("release: {}\n")
    assert read_text(str(path), "release manifest") == "release: {}\n"
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    assert read_text(str(link)) == "release: {}\n"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = fifo(tmp_path / "m.yaml")
    one_sentence(finishes(lambda: read_text(str(path), "release manifest"), path), f"{path}: release manifest is a FIFO; expected a regular file")
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    one_sentence(finishes(lambda: read_text(str(link)), path), "is a FIFO")


@pytest.mark.parametrize(("target", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_a_link_to_a_device_is_refused(tmp_path: Path, target: str, kind: str) -> None:
    link = tmp_path / "store.json"
    link.symlink_to(target)
    err = finishes(lambda: read_bytes(str(link), "lock"))
    one_sentence(err, f"{link}: lock is {kind}; expected a regular file")
    assert err.details["kind"] == "unreadable"


def test_a_directory_and_a_socket_are_refused(tmp_path: Path) -> None:
    one_sentence(finishes(lambda: read_text(str(tmp_path))), "is a directory; expected a regular file")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "sock"))
        one_sentence(finishes(lambda: read_text(str(tmp_path / "sock"))), "is a socket")
    finally:
        server.close()


def test_without_following_links_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text("{}")
    link = tmp_path / "job.json"
    link.symlink_to(target)
    one_sentence(finishes(lambda: read_json(str(link), "job file", follow_symlinks=False)), f"{link}: job file is a symbolic link")
    assert read_json(str(target), follow_symlinks=False) == {}


def test_a_missing_file_and_a_bad_path_are_one_sentence(tmp_path: Path) -> None:
    err = finishes(lambda: read_text(str(tmp_path / "nope.yaml"), "release manifest"))
    assert one_sentence(err) == f"{tmp_path}/nope.yaml: release manifest not found."
    one_sentence(finishes(lambda: read_text("bad\0path")), "cannot read file")


def test_size_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 2048)
    assert read_bytes(str(path), max_bytes=2048) == b"x" * 2048
    one_sentence(finishes(lambda: read_bytes(str(path), "template", max_bytes=2047)), "template is larger than 2047 bytes")


def test_open_regular_gives_a_readable_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    fd = open_regular(str(path))
    try:
        assert os.read(fd, 10) == b"abc"
    finally:
        os.close(fd)


def test_file_sha256_hashes_a_regular_file_in_pieces_and_refuses_a_fifo_or_a_link(tmp_path: Path) -> None:
    path = tmp_path / "artifact.dump"
    data = os.urandom(3 * (1 << 20) + 17)  # more than one 1 MiB piece, and a short last one
    path.write_bytes(data)
    assert file_sha256(str(path), "backup artifact") == (hashlib.sha256(data).hexdigest(), len(data))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256(str(empty)) == (hashlib.sha256(b"").hexdigest(), 0)
    pipe = fifo(tmp_path / "pipe")
    one_sentence(finishes(lambda: file_sha256(str(pipe), "debug store file"), pipe), f"{pipe}: debug store file is a FIFO; expected a regular file")
    link = tmp_path / "link"
    link.symlink_to(path)
    assert file_sha256(str(link))[0] == hashlib.sha256(data).hexdigest()
    one_sentence(finishes(lambda: file_sha256(str(link), "bundle b", follow_symlinks=False)), f"{link}: bundle b is a symbolic link")


def test_not_utf8_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    path.write_bytes(b"\xff\xfe")
    err = finishes(lambda: read_text(str(path), "lock"))
    one_sentence(err, "lock is not UTF-8 text (byte 0)")
    assert err.details["kind"] == "invalid"


def test_display_name_escapes_bytes_that_are_not_utf8() -> None:
    assert display_name(os.fsdecode(b"a\xffb")) == "a\\xffb"
    assert display_name("ok-é") == "ok-é"


# --------------------------------------------------------------------------- YAML


def test_an_alias_bomb_is_refused_quickly() -> None:
    assert len(ALIAS_BOMB) < 1024
    err = finishes(lambda: parse_yaml(ALIAS_BOMB, "bomb.yaml", aliases=True), seconds=10)
    one_sentence(err, "bomb.yaml: YAML expands to more than 250000 values")
    one_sentence(finishes(lambda: parse_yaml(ALIAS_BOMB, "bomb.yaml")), "bomb.yaml: YAML an anchor &a at line 1, column 4 is not allowed here")


def test_a_few_aliases_of_a_large_scalar_are_refused_by_their_bytes() -> None:
    # 4,000 aliases of a 1 MiB scalar: 4,001 nodes, far below the node limit, and 4 GiB of text to anyone who writes it out.
    big = "x" * (1 << 20)
    text = f"big: &big {big}\nrepeats:\n" + "  - *big\n" * 4000
    err = finishes(lambda: parse_yaml(text, "compose.yaml", aliases=True), seconds=10)
    one_sentence(err, "compose.yaml: YAML expands to more than 16 MiB of text at line 17, column 5 (aliases repeat what they name)")
    # The same aliases of a short value are read.
    assert len(parse_yaml("v: &v abc\nr: [" + ", ".join(["*v"] * 4000) + "]\n", "small.yaml", aliases=True)["r"]) == 4000


def test_aliases_are_refused_unless_allowed() -> None:
    text = "base: &base {a: 1}\nother: *base\n"
    assert parse_yaml(text, "t.yaml", aliases=True) == {"base": {"a": 1}, "other": {"a": 1}}
    one_sentence(finishes(lambda: parse_yaml("a: 1\nb: *x\n", "t.yaml")), "YAML an alias *x at line 2, column 4 is not allowed here")


@pytest.mark.parametrize(
    "text",
    [
        deep_flow_yaml(),
        "x: " + "{a: " * 100_000 + "}" * 100_000 + "\n",
        "- " * 100_000 + "x\n",
        "".join(" " * i + "a:\n" for i in range(MAX_DEPTH + 2)) + " " * (MAX_DEPTH + 2) + "b: 1\n",
    ],
    ids=["flow-sequences", "flow-mappings", "compact-sequences", "block-mappings"],
)
def test_deep_nesting_is_refused_without_recursion(text: str) -> None:
    for aliases in (False, True):
        err = finishes(lambda aliases=aliases: parse_yaml(text, "deep.yaml", aliases=aliases), seconds=10)
        one_sentence(err, f"deep.yaml: YAML is nested more than {MAX_DEPTH} levels deep at line ")


def test_nesting_at_the_limit_is_read() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    value: Any = parse_yaml(text, "ok.yaml")
    for _level in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


def test_a_syntax_error_names_line_and_column() -> None:
    one_sentence(finishes(lambda: parse_yaml("a: [1,\n", "bad.yaml")), "bad.yaml: YAML syntax error at line 2, column 1")


def expanded_size(value: Any) -> int:
    """Nodes of a constructed document, a shared object counted each time it is reached."""
    if isinstance(value, dict):
        return 1 + sum(expanded_size(k) + expanded_size(v) for k, v in value.items())
    if isinstance(value, list):
        return 1 + sum(expanded_size(v) for v in value)
    return 1


names = st.sampled_from(["a", "b", "c"])


@st.composite
def documents_with_aliases(draw: st.DrawFn) -> str:
    """A YAML mapping whose entries are scalars, lists and maps, some anchored, later ones aliasing earlier anchors."""
    lines = []
    anchors: list[str] = []
    for index in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["scalar", "list", "map", "alias"] if anchors else ["scalar", "list", "map"]))
        anchor = f"n{index}"
        if kind == "alias":
            items = [f"*{draw(st.sampled_from(anchors))}" for _alias in range(draw(st.integers(1, 4)))]
            lines.append(f"k{index}: &{anchor} [{', '.join(items)}]")
        elif kind == "scalar":
            lines.append(f"k{index}: &{anchor} {draw(names)}")
        elif kind == "list":
            lines.append(f"k{index}: &{anchor} [{', '.join(draw(st.lists(names, max_size=4)))}]")
        else:
            keys = draw(st.lists(names, max_size=3, unique=True))
            lines.append(f"k{index}: &{anchor} {{{', '.join(f'{k}: {k}' for k in keys)}}}")
        anchors.append(anchor)
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents_with_aliases())
def test_the_node_count_equals_the_expanded_document(text: str) -> None:
    size = expanded_size(yaml.safe_load(text))
    check_yaml_shape(text, "t.yaml", aliases=True, max_nodes=size)
    with pytest.raises(StellaOpsError, match="YAML expands to more than"):
        check_yaml_shape(text, "t.yaml", aliases=True, max_nodes=size - 1)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="[]{}-:&*ab, \n'\"!|>#", max_size=120), aliases=st.booleans())
def test_random_yaml_gives_a_value_or_one_sentence(text: str, aliases: bool) -> None:
    try:
        parse_yaml(text, "fuzz.yaml", aliases=aliases, max_depth=4, max_nodes=40)
    except StellaOpsError as err:
        assert str(err).startswith("fuzz.yaml: ") and "\n" not in str(err)


# --------------------------------------------------------------------------- JSON


def test_deep_json_is_one_sentence() -> None:
    one_sentence(finishes(lambda: parse_json(deep_json(), "job.json", "job file")), f"job.json: job file is nested more than {MAX_DEPTH} levels deep")
    one_sentence(finishes(lambda: parse_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "j", "lock")), "lock is nested more than")
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "j") is not None


@pytest.mark.parametrize(("text", "expected"), [("{", "is not valid JSON (Expecting property name"), ("[1, 2", "line 1, column 6"), ("", "Expecting value")])
def test_bad_json_names_the_place(text: str, expected: str) -> None:
    one_sentence(finishes(lambda: parse_json(text, "x.json")), "x.json: file", expected)
