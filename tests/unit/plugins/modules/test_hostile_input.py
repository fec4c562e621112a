# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile input generated from every module's argument spec: no module is left out, a new one is covered at once.

Each module's documented options (its argument spec, which ansible-test's validate-modules holds
equal to the documentation, doc fragments included) are read; every option, and every suboption
of a list or dict of options, gets the attacks of its kind while the other options keep harmless
values (engines, servers and clusters that do not exist, files under the test's own directory):

- a path: a FIFO, ``/dev/zero``, a symlink that leaves its tree, a directory (holding a FIFO, a
  link out and a non-UTF-8 name, for the modules that walk what they are given);
- a URL: a trickling peer, a black hole, a scheme that is not http(s); every URL carries a planted
  password in its userinfo;
- a number: NaN, inf, -1, 0 and 10^30 (NaN and inf of a float must be refused);
- any other string: a leading ``-``, ``..``, a newline, an ANSI escape;
- a list of paths or strings: each attack of its elements' kind as its one element.

Every run must end within a deadline, leave no exception out of the module, fail (when it fails)
with a message free of control characters (a summary may put its items on lines of their own, an
attacker may not), print no planted secret anywhere in its result, and leave the file outside the
tree that the symlink points to unchanged. The result is what Ansible returns by default (no
``invocation``: INJECT_INVOCATION is off unless configured, and ansible-core echoes the arguments
as given when its own validation refuses them, before any module code runs).
``EXCEPTIONS`` lists what is not attacked here, and why.
"""

from __future__ import annotations

import ast
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hostile import BlackHole, Trickler
from module_runner import MODULES, ROOT

DRIVER = Path(__file__).with_name("attack_driver.py")
FRAGMENTS = ROOT / "plugins" / "doc_fragments"
SECRET = "PLANTED-s3cret"
# a run that passes the deadline hangs: the longest honest wait of a case is a 1 s timeout, twice
DEADLINE = 20.0
OUTSIDE_CONTENT = "outside the tree: never written through a link\n"

# Addresses that get the attacks of a string or a path here but no black hole or trickling peer, with
# the reason; the attack is made where the reason says.
EXCEPTIONS = {
    "docker_host": "a black-hole engine holds the docker CLI until the runner's 120 s query bound; "
    "tests/unit/plugins/module_utils/test_core_runner.py proves the bound with the real CLI",
    "kubeconfig": "a black-hole API server is bounded by helm's runner and the kubernetes client's "
    "default timeout; test_core_runner.py and test_kube_client.py prove both against a real black hole",
    "mongodb.uri": "mongodump waits its own 30 s server selection for a silent peer; the URI's "
    "password is planted and checked here through the base case",
    "object_storage.endpoint": "boto3 retries a silent endpoint with its own timeouts (5 s connect, "
    "60 s read); the endpoint's credentials are separate options, planted and checked here",
}
# ansible-core's own conversion of an int option raises OverflowError on infinity (check_type_int:
# int(Decimal('Infinity'))), before any module code runs: not attacked here. A non-UTF-8 name as an
# option's value never reaches module code either (AnsibleModule.__init__ encodes every parameter
# as UTF-8 for its log and raises): such names are attacked inside the trees that modules walk.
INT_INFINITY = "ansible.module_utils.common.validation.check_type_int"
URL_NAMES = ("url", "poll_url")
SECRET_NAMES = ("password", "bearer_token", "secret_key", "access_key", "token")


def _documentation(path: Path, name: str = "DOCUMENTATION") -> Any:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == name for target in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no {name}")


def module_options(module: str) -> dict[str, Any]:
    """The module's options, those of its doc fragments included."""
    doc = _documentation(MODULES / f"{module}.py")
    options: dict[str, Any] = {}
    for fragment in doc.get("extends_documentation_fragment") or []:
        options.update(_documentation(FRAGMENTS / f"{fragment.rsplit('.', 1)[-1]}.py").get("options") or {})
    options.update(doc.get("options") or {})
    return options


MODULE_NAMES = sorted(path.stem for path in MODULES.glob("*.py") if not path.stem.startswith("_"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Ground:
    """The harmless world a case runs in: files under ``tmp``, servers that refuse or misbehave."""

    def __init__(self, tmp: Path, trickler: Trickler, hole: BlackHole) -> None:
        self.tmp = tmp
        self.closed = _closed_port()
        self.trickler = trickler
        self.hole = hole
        self.tree = tmp / "tree"
        self.tree.mkdir()
        self.outside = tmp / "outside.txt"
        self.outside.write_text(OUTSIDE_CONTENT)
        (self.tree / "link-out").symlink_to(self.outside)
        os.mkfifo(self.tree / "fifo")
        # a directory where a file is expected, and a tree to walk: a FIFO, a link out, a name that is not UTF-8
        walk = self.tree / "dir"
        walk.mkdir()
        (walk / "x").write_text("x")
        os.mkfifo(walk / "fifo")
        (walk / "link-out").symlink_to(self.outside)
        os.close(os.open(os.fsencode(walk) + b"/name-\xff", os.O_CREAT | os.O_WRONLY, 0o600))

    def url(self, port: int, path: str = "/x") -> str:
        return f"http://planted:{SECRET}@127.0.0.1:{port}{path}"

    def base_value(self, name: str, spec: dict[str, Any]) -> Any:
        """A harmless value of one option: what a case keeps for every option it does not attack."""
        kind = spec.get("type", "str")
        leaf = name.rsplit(".", 1)[-1]
        if spec.get("choices"):
            return spec.get("default", spec["choices"][0]) if kind != "list" else [spec["choices"][0]]
        if leaf in ("docker_host",):
            return f"unix://{self.tmp}/no-engine.sock"
        if leaf in URL_NAMES or leaf == "endpoint":
            return self.url(self.closed)
        if leaf == "uri":
            return f"mongodb://planted:{SECRET}@127.0.0.1:{self.closed}/x?serverSelectionTimeoutMS=500"
        if leaf in ("host",):
            return "127.0.0.1"
        if leaf in ("port",):
            return self.closed
        if leaf in SECRET_NAMES:
            return SECRET
        if leaf in ("timeout", "wait_timeout", "within", "retries", "health_retries") and kind in ("int", "float"):
            return 1
        if leaf in ("interval", "health_interval") and kind in ("int", "float"):
            return 0
        if kind == "path":
            return str(self.tmp / "work" / leaf)
        if kind in ("int", "float", "bool"):
            return spec.get("default", 1 if kind != "bool" else False)
        if kind == "list":
            return [self.base_of(spec["suboptions"], name)] if spec.get("suboptions") else []
        if kind == "dict":
            return self.base_of(spec["suboptions"], name) if spec.get("suboptions") else {}
        return spec.get("default", "x") if kind == "str" else "x"

    def base_of(self, options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        """Required options, and the ones that bound waits or reach servers, with harmless values."""
        chosen = {}
        for name, spec in options.items():
            full = f"{prefix}.{name}" if prefix else name
            wanted = spec.get("required") or name in (*URL_NAMES, "timeout", "retries", "interval", "health_retries", "docker_host", "port", "host")
            if wanted or name in SECRET_NAMES or name in ("kubeconfig", "journal_dir", "git_dir"):
                chosen[name] = self.base_value(full, spec)
        if "type" in options and options["type"].get("choices") and "http" in options["type"]["choices"]:
            chosen["type"] = "http"  # checks and smoke tests: the kind that reaches a URL
        return chosen

    def attacks(self, name: str, spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        kind = spec.get("type", "str")
        leaf = name.rsplit(".", 1)[-1]
        if kind == "list" and not spec.get("suboptions") and not spec.get("choices"):
            # a list of paths or strings: each attack as its one element
            element = {"type": spec.get("elements", "str")}
            yield from ((f"element-{attack}", [value]) for attack, value in self.attacks(name, element))
        elif kind == "path":
            yield "fifo", str(self.tree / "fifo")
            yield "dev-zero", "/dev/zero"
            yield "directory", str(self.tree / "dir")
            yield "symlink-out", str(self.tree / "link-out")
        elif leaf in URL_NAMES:
            yield "trickling-peer", self.url(self.trickler.port)
            yield "black-hole", self.url(self.hole.port)
            yield "not-http", f"ftp://planted:{SECRET}@127.0.0.1:{self.closed}/x"
        elif kind in ("int", "float"):
            for label, value in (("nan", math.nan), ("inf", math.inf), ("minus-one", -1), ("zero", 0), ("1e30", 10**30)):
                if not (kind == "int" and label == "inf"):  # see INT_INFINITY
                    yield label, value
        elif kind in ("str", "raw") and not spec.get("choices"):
            yield "leading-dash", "--help"
            yield "dot-dot", "../../etc"
            yield "newline", "a\nb: c"
            yield "ansi-escape", "\x1b[2J\x1b[Hx"


def _set(args: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """``args`` with ``name`` (``option`` or ``option.suboption``) set to ``value``."""
    top, _dot, sub = name.partition(".")
    changed = json.loads(json.dumps(args))
    if not sub:
        changed[top] = value
    elif isinstance(changed.get(top), list):
        changed[top] = [{**(changed[top][0] if changed[top] else {}), sub: value}]
    else:
        changed[top] = {**(changed.get(top) or {}), sub: value}
    return changed


def cases(module: str, ground: Ground) -> list[dict[str, Any]]:
    options = module_options(module)
    base = {**ground.base_of(options), "_ansible_tmpdir": str(ground.tmp / "ansible-tmp")}
    found = [{"id": "base", "args": base}]
    for name, spec in options.items():
        targets = [(name, spec)] + [(f"{name}.{sub}", subspec) for sub, subspec in (spec.get("suboptions") or {}).items()]
        for full, target in targets:
            for attack, value in ground.attacks(full, target):
                found.append({"id": f"{full}={attack}", "args": _set(base, full, value), "float": target.get("type") == "float"})
    return found


def problems_of(case: dict[str, Any], result: dict[str, Any]) -> list[str]:
    if result["outcome"] == "hang":
        return [f"did not return within {DEADLINE:g} s"]
    printed = result["printed"]
    if result["outcome"] == "traceback":
        return ["an exception left the module: " + printed.strip().splitlines()[-1]]
    try:
        answer = json.loads(printed)
    except ValueError:
        return [f"printed no JSON result: {printed[-300:]!r}"]
    found = []
    if SECRET in printed:
        found.append("the planted secret is in its result")
    if answer.get("failed"):
        message = str(answer.get("msg", ""))
        # a summary may list its items on lines of their own: newline and tab are the only control characters
        if not message or any((ord(char) < 0x20 and char not in "\n\t") or 0x7F <= ord(char) <= 0x9F for char in message):
            found.append(f"its message is not free of control characters: {message[:200]!r}")
    elif case.get("float") and case["id"].endswith(("=nan", "=inf")):
        found.append("a NaN or infinite number was taken")
    return found


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[Trickler, BlackHole]]:
    trickler, hole = Trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"), BlackHole()
    yield trickler, hole
    trickler.close()
    hole.close()


def test_every_module_is_attacked_and_every_exception_names_a_real_option() -> None:
    names = {f"{top}.{sub}" for module in MODULE_NAMES for top, spec in module_options(module).items() for sub in (spec.get("suboptions") or {})}
    names |= {top for module in MODULE_NAMES for top in module_options(module)}
    assert len(MODULE_NAMES) >= 28
    assert set(EXCEPTIONS) <= names, set(EXCEPTIONS) - names


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_hostile_input_gives_one_clear_failure(module: str, tmp_path: Path, peers: tuple[Trickler, BlackHole]) -> None:
    ground = Ground(tmp_path, *peers)
    (tmp_path / "work").mkdir()
    (tmp_path / "ansible-tmp").mkdir()
    planned = cases(module, ground)
    cases_file, results_file = tmp_path / "cases.json", tmp_path / "results.json"
    cases_file.write_text(json.dumps(planned))
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".build"), "KUBECONFIG": str(tmp_path / "no-kubeconfig"), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(MODULES / f"{module}.py"), str(cases_file), str(results_file), str(DEADLINE)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE * len(planned) + 60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(results_file.read_text())
    assert [result["id"] for result in results] == [case["id"] for case in planned]
    found = [f"{case['id']}: {problem}" for case, result in zip(planned, results, strict=True) for problem in problems_of(case, result)]
    assert ground.outside.read_text() == OUTSIDE_CONTENT, "a module wrote through a symlink out of its tree"
    assert not found, f"{module}: {len(found)} of {len(planned)} cases failed:\n" + "\n".join(found)
