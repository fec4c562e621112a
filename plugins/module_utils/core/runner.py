# SPDX-License-Identifier: GPL-3.0-or-later
"""One runner per external tool (docker, helm, pg_dump, ...).

A ``ToolRunner`` finds its binary once, probes its version once, runs argument
lists (never a shell string) with ``LC_ALL=C`` through ``module.run_command``
and turns a failure into ``fail_json(msg, cmd, rc, stdout, stderr)``.

Every command is bounded in time by coreutils ``timeout`` (present wherever coreutils is): a
peer that accepts and never answers (a Docker engine, a Kubernetes API server) would otherwise
hold the run for ever. ``query_timeout`` bounds read-only queries, ``timeout`` the rest unless
the caller names a bound; a command past its bound fails with one sentence saying so.

``module`` is duck-typed: an ``AnsibleModule`` in modules, or ``LocalModule``
for the command-line tools and tests, so both share one code path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from typing import Any, Mapping, Optional, Protocol, Sequence

from .errors import StellaOpsError
from .redact import printable

_VERSION_RE = re.compile(r"(\d+\.\d+(?:\.\d+)?)")
# Read-only queries (versions, lists, inspections) answer in seconds from a peer that works.
QUERY_TIMEOUT = 120.0
# rc of coreutils ``timeout`` when the command ran out of time (124) or had to be killed (137)
TIMED_OUT = (124, 137)
_SILENT_PEER = "the engine, server or database it talks to may not be answering."


def bounded_argv(timeout_bin: Optional[str], seconds: float, argv: Sequence[str], kill_after: float) -> list[str]:
    """``argv`` under coreutils ``timeout``: stopped after ``seconds``, killed ``kill_after`` seconds later
    (as it is when ``timeout`` is not installed)."""
    return [timeout_bin, f"--kill-after={kill_after:g}", f"{seconds:g}", *argv] if timeout_bin else list(argv)


class ModuleLike(Protocol):
    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[list[str]] = None) -> Optional[str]: ...

    def run_command(self, args: list[str], **kwargs: Any) -> tuple[int, str, str]: ...

    def fail_json(self, msg: str, **kwargs: Any) -> Any: ...


def tool_dirs() -> list[str]:
    """Extra directories searched for binaries: ``STELLAOPS_TOOLS_DIR`` (set by ``make setup``)."""
    extra = os.environ.get("STELLAOPS_TOOLS_DIR", "")
    return [d for d in extra.split(os.pathsep) if d]


class LocalModule:
    """The subset of ``AnsibleModule`` the runners need, for CLI tools and tests."""

    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[list[str]] = None) -> Optional[str]:
        for directory in opt_dirs or []:
            candidate = os.path.join(directory, arg)
            if os.access(candidate, os.X_OK):
                return candidate
        found = shutil.which(arg)
        if found is None and required:
            self.fail_json(msg=f"Failed to find required executable {arg!r} in PATH.")
        return found

    def run_command(
        self,
        args: list[str],
        check_rc: bool = False,
        environ_update: Optional[Mapping[str, str]] = None,
        data: Optional[str] = None,
        binary_data: bool = False,
        cwd: Optional[str] = None,
        **_unused: Any,
    ) -> tuple[int, str, str]:
        env = dict(os.environ)
        env.update(environ_update or {})
        # This is the stand-in for AnsibleModule.run_command outside Ansible, so it calls subprocess itself.
        proc = subprocess.run(  # noqa: S603  # pylint: disable=ansible-bad-function
            args,
            input=data,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr

    def fail_json(self, msg: str, **kwargs: Any) -> Any:
        raise StellaOpsError(msg, **kwargs)


class ToolRunner:
    """Runs one external tool; subclasses name the binary and how to read its version."""

    binary: str = ""
    version_args: Sequence[str] = ("--version",)
    # long enough for a slow pull, dump or rollout; short enough that a silent peer does not hold a run for ever
    default_timeout: float = 3600.0

    def __init__(self, module: ModuleLike, executable: Optional[str] = None, timeout: Optional[float] = None) -> None:
        self.module = module
        path = executable or module.get_bin_path(self.binary, required=False, opt_dirs=tool_dirs())
        if not path:
            module.fail_json(msg=f"Cannot find the {self.binary!r} executable; run 'make setup' or set its path option.")
        elif executable and not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
            module.fail_json(msg=f"The {self.binary} executable {path} (its path option) does not exist or is not executable.")
        self.path: str = path or ""
        self.timeout = float(timeout or self.default_timeout)
        self.query_timeout = min(QUERY_TIMEOUT, self.timeout)
        self._timeout_bin = module.get_bin_path("timeout", required=False)
        self._version: Optional[str] = None

    @property
    def env(self) -> dict[str, str]:
        return {"LC_ALL": "C", "LANG": "C"}

    @property
    def version(self) -> str:
        """The tool's version, probed once."""
        if self._version is None:
            rc, out, err = self.run(self.version_args, check=False, timeout=self.query_timeout)
            match = _VERSION_RE.search(out or err or "")
            self._version = match.group(1) if match and rc == 0 else "unknown"
        return self._version

    def run(
        self,
        args: Sequence[str],
        *,
        check: bool = True,
        env: Optional[Mapping[str, str]] = None,
        data: Optional[str] = None,
        cwd: Optional[str] = None,
        what: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> tuple[int, str, str]:
        """Run the tool with ``args``; on a non-zero exit and ``check`` fail with the command's output.

        The command may take ``timeout`` seconds (the runner's ``timeout`` when not given); one that
        takes longer is stopped and fails, whatever ``check`` says: its output is not an answer.
        """
        bound = self.timeout if timeout is None else timeout
        cmd = [self.path, *args]
        environ = self.env
        environ.update(env or {})
        kwargs: dict[str, Any] = {"environ_update": environ}
        if data is not None:
            kwargs["data"] = data
            kwargs["binary_data"] = False
        if cwd is not None:
            kwargs["cwd"] = cwd
        started = time.monotonic()
        rc, out, err = self.module.run_command(bounded_argv(self._timeout_bin, bound, cmd, 10), **kwargs)
        if self._timeout_bin and rc in TIMED_OUT and time.monotonic() - started >= bound:
            named = what or f"{self.binary} {args[0] if args else ''}".strip()
            self.module.fail_json(msg=f"{named} did not finish within {bound:g} s and was stopped; {_SILENT_PEER}", cmd=cmd, rc=rc)
        if check and rc != 0:
            self.fail(args, rc, out, err, what)
        return rc, out, err

    def fail(self, args: Sequence[str], rc: int, out: str, err: str, what: Optional[str] = None) -> None:
        """Fail with the last line the tool printed, and the whole command and output beside it."""
        first = (err or out or "").strip().splitlines()
        reason = first[-1] if first else f"exit code {rc}"
        self.module.fail_json(msg=printable(f"{what or self.binary} failed: {reason}"), cmd=[self.path, *args], rc=rc, stdout=out, stderr=err)
