# SPDX-License-Identifier: GPL-3.0-or-later
"""Channel alignment of a 1,000-component release against 20 targets, next to parsing the same files.

Floor: reading and YAML-parsing the manifest and the 20 targets with the same loader the checker
uses (libyaml's CSafeLoader when present). Measured: load_manifest (schema validation, image
references) plus check_alignment over the targets (10 compose files, 10 Helm values files, half
of those in the mapping form). One target carries drift so the comparison has findings to build.
Prints the best of several interleaved runs of each, as wall-clock and as CPU time of this process
(the CPU figure is the steadier one on a shared machine), and the ratios; the goal is at most 1.5x.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from plugins.module_utils.release.alignment import check_alignment  # noqa: E402
from plugins.module_utils.release.manifest import load_manifest  # noqa: E402

COMPONENTS = 1000
TARGETS = 20
RUNS = 7
REG = "registry.stella-ops.org/stellaops"
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def build(directory: Path) -> tuple[str, list[str]]:
    names = [f"component-{i:04d}" for i in range(COMPONENTS)]
    release = {
        "release": {
            "version": "2025.10.0",
            "channel": "stable",
            "date": "2025-10-01T00:00:00Z",
            "components": [{"name": n, "image": f"{REG}/{n}@{digest(n)}"} for n in names],
        }
    }
    manifest = directory / "2025.10.0-stable.yaml"
    manifest.write_text(yaml.safe_dump(release, sort_keys=False))
    targets = []
    for t in range(TARGETS):
        drift = t == TARGETS - 1
        images = {n: f"{REG}/{n}@{digest(n, 'old') if drift and i % 10 == 0 else digest(n)}" for i, n in enumerate(names)}
        if t % 2 == 0:
            data: dict[str, Any] = {"services": {n: {"image": img, "restart": "unless-stopped"} for n, img in images.items()}}
            path = directory / f"docker-compose.{t:02d}.yaml"
        elif t % 4 == 1:
            data = {"services": {}, "global": {"pullPolicy": "IfNotPresent"}}
            data["services"] = {n: {"image": img, "replicas": 2} for n, img in images.items()}
            path = directory / f"values-{t:02d}.yaml"
        else:
            data = {n: {"deployment": {"image": {"repository": f"{REG}/{n}", "digest": img.split("@", 1)[1]}}, "replicas": 2} for n, img in images.items()}
            path = directory / f"values-{t:02d}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        targets.append(str(path))
    return str(manifest), targets


def best_of(*fns: Callable[[], Any]) -> list[tuple[float, float, Any]]:
    """Best wall and CPU time of each function over RUNS rounds, interleaved so load affects both alike."""
    wall: list[list[float]] = [[] for _fn in fns]
    cpu: list[list[float]] = [[] for _fn in fns]
    results: list[Any] = [None] * len(fns)
    for _round in range(RUNS):
        for index, fn in enumerate(fns):
            start, start_cpu = time.perf_counter(), time.process_time()
            results[index] = fn()
            cpu[index].append(time.process_time() - start_cpu)
            wall[index].append(time.perf_counter() - start)
    return [(min(w), min(c), r) for w, c, r in zip(wall, cpu, results, strict=True)]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-alignment-") as tmp:
        manifest, targets = build(Path(tmp))
        files = [manifest, *targets]
        size = sum(os.path.getsize(f) for f in files)

        def parse_only() -> int:
            count = 0
            for path in files:
                with open(path, encoding="utf-8") as handle:
                    count += len(yaml.load(handle.read(), Loader=Loader))  # noqa: S506 - safe loader
            return count

        def align() -> Any:
            return check_alignment(load_manifest(manifest), targets)

        (floor, floor_cpu, _count), (measured, measured_cpu, report) = best_of(parse_only, align)
        uses = sum(t.images for t in report.targets)
        print(f"release: {COMPONENTS} components; targets: {TARGETS} ({uses} image references, {size / 1e6:.1f} MB of YAML)")
        print(f"loader: {Loader.__name__}; best of {RUNS} interleaved runs; load average {os.getloadavg()[0]:.1f}")
        print(f"findings: {len(report.findings)} ({report.summary()}), aligned: {report.aligned}")
        print(f"floor (parse only):  wall {floor:.3f} s   cpu {floor_cpu:.3f} s")
        print(f"load + align:        wall {measured:.3f} s   cpu {measured_cpu:.3f} s")
        print(f"ratio:               wall {measured / floor:.2f}x   cpu {measured_cpu / floor_cpu:.2f}x (goal <= 1.50x)")


if __name__ == "__main__":
    main()
