# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence baseline benchmarks, printed as ratios against floors measured in the same run.

1. Hash a local directory of bundles: throughput of scan_store (parallel reads) next to `sha256sum`
   over the same files (the floor; goal >= 0.8x).
2. Incremental re-baseline with 1% of the bundles changed, next to a full baseline (goal >= 10x).
3. 100,000 bundles in a local directory: baseline and verify time, peak RSS (in a child process).
4. The S3 path against the sandbox storage (a bench bucket of its own, removed afterwards): baseline and
   verify time and peak RSS at --s3-count bundles.

    .venv/bin/python tests/benchmarks/bench_evidence.py [--files N] [--big N] [--scale N] [--s3-count N] [--skip-s3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from plugins.module_utils.core.atomic import write_json  # noqa: E402
from plugins.module_utils.core.s3 import S3Location, iter_objects, make_client  # noqa: E402
from plugins.module_utils.evidence.evidence import (  # noqa: E402
    HashCache,
    build_baseline,
    load_baseline,
    scan_store,
    verify_scan,
)
from plugins.module_utils.evidence.store import DirectoryStore, S3Store  # noqa: E402

TENANTS = ["acme", "globex", "initech", "umbrella"]
KINDS = ["sbom", "attestation", "scan-report", "vex"]


def best_of(runs: int, fn: Callable[[], Any]) -> float:
    times = []
    for _run in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_bundles(root: Path, count: int, big: int, rng: random.Random, small_max: int = 64 << 10) -> int:
    total = 0
    for i in range(count):
        path = root / TENANTS[i % 4] / KINDS[(i // 4) % 4] / f"{i // 16 % 100:02d}" / f"bundle-{i:07d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(512, small_max)
        path.write_bytes(os.urandom(size))
        total += size
    for i in range(big):
        path = root / TENANTS[i % 4] / "image-layers" / f"layer-{i:03d}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for _chunk in range(32):
                handle.write(os.urandom(1 << 20))
        total += 32 << 20
    return total


def sha256sum_all(root: Path) -> None:
    find = subprocess.Popen(["find", str(root), "-type", "f", "-print0"], stdout=subprocess.PIPE)
    subprocess.run(["xargs", "-0", "sha256sum"], stdin=find.stdout, stdout=subprocess.DEVNULL, check=True, env={**os.environ, "LC_ALL": "C"})
    find.wait()


def bench_throughput(tmp: Path, files: int, big: int) -> None:
    root = tmp / "throughput"
    total = make_bundles(root, files, big, random.Random(1))
    store = DirectoryStore(str(root))
    sha256sum_all(root)  # warm the page cache for both
    floor = best_of(3, lambda: sha256sum_all(root))
    mib = total / (1 << 20)
    print(f"[1] {files + big} bundles, {mib:.0f} MiB (page cache warm), {os.cpu_count()} CPUs")
    print(f"    sha256sum (floor):          {floor:7.2f} s  {mib / floor:8.1f} MiB/s")
    for workers in (1, 2, 4, 8):
        took = best_of(3, lambda w=workers: scan_store(store, workers=w))
        print(f"    scan_store workers={workers}:     {took:7.2f} s  {mib / took:8.1f} MiB/s  ratio {floor / took:.2f}x of sha256sum")
    shutil.rmtree(root)


def bench_incremental(tmp: Path, files: int, small_max: int) -> None:
    root = tmp / "incremental"
    make_bundles(root, files, 0, random.Random(2), small_max=small_max)
    store = DirectoryStore(str(root))
    cache_path = str(tmp / "cache.json")

    def full() -> None:
        scan = scan_store(store, workers=8)
        build_baseline(store, scan, 2)
        write_json(cache_path, HashCache(store.identity()).document(scan.results), indent=None)

    full()
    full_time = best_of(2, full)
    keys = sorted(p for p in root.rglob("*.json"))
    rng = random.Random(3)
    changed = rng.sample(keys, max(1, len(keys) // 100))
    for path in changed:
        path.write_bytes(os.urandom(2048))
    holder: dict[str, Any] = {}

    def incremental() -> None:
        scan = scan_store(store, workers=8, cache=HashCache.load(cache_path, store.identity()))
        build_baseline(store, scan, 2)
        holder["scan"] = scan

    start = time.perf_counter()
    incremental()
    inc_time = time.perf_counter() - start
    scan = holder["scan"]
    print(f"[2] incremental re-baseline, local directory, {len(keys)} bundles of 0.5-{small_max >> 10} KiB, {len(changed)} changed (1%)")
    print(f"    full baseline (floor):      {full_time:7.2f} s")
    print(f"    incremental:                {inc_time:7.2f} s  rehashed {scan.hashed}, from cache {scan.cached}  speed-up {full_time / inc_time:.1f}x")
    shutil.rmtree(root)


def child_scale(args: argparse.Namespace) -> None:
    """Runs in a child process: baseline and verify of a store, prints JSON with times and peak RSS."""
    if args.child_store == "directory":
        store: Any = DirectoryStore(args.child_path)
    else:
        s3 = json.loads((ROOT / ".sandbox" / "sandbox.json").read_text())["s3"]
        secret = Path(s3["secret_key_file"]).read_text().strip()
        store = S3Store(S3Location(args.child_path, "evidence/", s3["endpoint"], s3["region"], s3["access_key"], secret), workers=16)
    baseline_file = os.path.join(args.child_tmp, "scale-baseline.json")
    start = time.perf_counter()
    scan = scan_store(store, workers=16 if args.child_store == "s3" else 8)
    write_json(baseline_file, build_baseline(store, scan, 2), indent=None)
    t_baseline = time.perf_counter() - start
    start = time.perf_counter()
    baseline = load_baseline(baseline_file)
    report = verify_scan(baseline, scan_store(store, workers=16 if args.child_store == "s3" else 8), store)
    t_verify = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"baseline_s": t_baseline, "verify_s": t_verify, "peak_rss_mib": peak, "count": baseline["total"]["count"],
                      "status": report["status"], "baseline_mib": os.path.getsize(baseline_file) / (1 << 20)}))


def run_child(store: str, path: str, tmp: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", store, "--child-path", path, "--child-tmp", str(tmp)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_scale(tmp: Path, count: int) -> None:
    root = tmp / "scale"
    start = time.perf_counter()
    make_bundles(root, count, 0, random.Random(4), small_max=2048)
    made = time.perf_counter() - start
    floor_start = time.perf_counter()
    sha256sum_all(root)
    floor = time.perf_counter() - floor_start
    result = run_child("directory", str(root), tmp)
    print(f"[3] {result['count']} bundles in a local directory (made in {made:.1f} s)")
    print(f"    sha256sum over them (floor): {floor:7.2f} s")
    print(f"    baseline:                    {result['baseline_s']:7.2f} s  (baseline file {result['baseline_mib']:.1f} MiB)")
    print(f"    verify:                      {result['verify_s']:7.2f} s  status {result['status']}")
    print(f"    peak RSS (baseline + verify): {result['peak_rss_mib']:6.0f} MiB")
    shutil.rmtree(root)


def bench_s3(tmp: Path, count: int) -> None:
    s3 = json.loads((ROOT / ".sandbox" / "sandbox.json").read_text())["s3"]
    secret = Path(s3["secret_key_file"]).read_text().strip()
    location = S3Location(f"bench-evidence-{uuid.uuid4().hex[:8]}", "evidence/", s3["endpoint"], s3["region"], s3["access_key"], secret)
    client = make_client(location, max_pool_connections=32)
    client.create_bucket(Bucket=location.bucket)
    rng = random.Random(5)
    try:
        start = time.perf_counter()

        def put(i: int) -> None:
            key = f"evidence/{TENANTS[i % 4]}/{KINDS[(i // 4) % 4]}/bundle-{i:07d}.json"
            client.put_object(Bucket=location.bucket, Key=key, Body=os.urandom(rng.randint(512, 2048)))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(count)))
        uploaded = time.perf_counter() - start
        store = S3Store(location, workers=16)
        cache_path = str(tmp / "s3-cache.json")
        start = time.perf_counter()
        scan = scan_store(store, workers=16)
        build_baseline(store, scan, 2)
        full_time = time.perf_counter() - start
        write_json(cache_path, HashCache(store.identity()).document(scan.results), indent=None)
        changed = rng.sample([r.key for r in scan.results], max(1, count // 100))
        for key in changed:
            client.put_object(Bucket=location.bucket, Key="evidence/" + key, Body=os.urandom(1024))
        start = time.perf_counter()
        inc = scan_store(store, workers=16, cache=HashCache.load(cache_path, store.identity()))
        build_baseline(store, inc, 2)
        inc_time = time.perf_counter() - start
        result = run_child("s3", location.bucket, tmp)
        print(f"[4] {result['count']} bundles in the sandbox S3 storage (uploaded in {uploaded:.1f} s)")
        print(f"    baseline:                    {result['baseline_s']:7.2f} s  ({result['count'] / result['baseline_s']:.0f} bundles/s)")
        print(f"    verify:                      {result['verify_s']:7.2f} s  status {result['status']}")
        print(f"    peak RSS (baseline + verify): {result['peak_rss_mib']:6.0f} MiB")
        print(f"    incremental, {len(changed)} changed (1%): full {full_time:.2f} s, incremental {inc_time:.2f} s "
              f"(rehashed {inc.hashed}, from cache {inc.cached})  speed-up {full_time / inc_time:.1f}x")
    finally:
        keys = [{"Key": o.key} for o in iter_objects(client, location.bucket)]
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=location.bucket, Delete={"Objects": keys[i : i + 1000]})
        client.delete_bucket(Bucket=location.bucket)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--big", type=int, default=8)
    parser.add_argument("--incremental", type=int, default=20000)
    parser.add_argument("--scale", type=int, default=100000)
    parser.add_argument("--s3-count", type=int, default=5000)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--only", choices=["throughput", "incremental", "scale", "s3"])
    parser.add_argument("--child", choices=["directory", "s3"], dest="child_store")
    parser.add_argument("--child-path")
    parser.add_argument("--child-tmp")
    args = parser.parse_args()
    if args.child_store:
        child_scale(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as name:
        tmp = Path(name)
        if args.only in (None, "throughput"):
            bench_throughput(tmp, args.files, args.big)
        if args.only in (None, "incremental"):
            bench_incremental(tmp, args.incremental, 32 << 10)
            bench_incremental(tmp, args.incremental // 5, 1 << 20)
        if args.only in (None, "scale"):
            bench_scale(tmp, args.scale)
        if args.only in (None, "s3") and not args.skip_s3:
            bench_s3(tmp, args.s3_count)


if __name__ == "__main__":
    main()
