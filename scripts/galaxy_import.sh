#!/usr/bin/env bash
# Galaxy's import checks on the collection tarball, as Galaxy runs them when the collection is
# published: galaxy-importer (pinned in requirements.txt) reads MANIFEST.json, the docs of every
# plugin through ansible-doc, every role (README, meta) and the playbooks, then runs ansible-lint
# (production profile) on the extracted tarball.
#
# The importer exits 0 after most problems: ansible-doc failures are logged as ERROR lines, lint
# findings as WARNING lines (one per finding), a missing ansible-doc or ansible-lint as a WARNING
# that says it skipped the step. So this script fails on the exit code, on every ERROR or CRITICAL
# line, on every WARNING line that is not listed in ACCEPTED_WARNINGS below, and when the log lacks
# the lines that say the lint ran and the import completed.
#
# The importer points ANSIBLE_COLLECTIONS_PATH at its extraction directory only; the collections of
# galaxy.yml's dependencies (community.docker, kubernetes.core) resolve from the pinned ansible
# package in .venv, which Ansible finds on sys.path (COLLECTIONS_SCAN_SYS_PATH, on by default). So
# ansible-doc and ansible-lint must be those of .venv: it goes first on PATH.
#
#   scripts/galaxy_import.sh   (tarball: .cache/dist; log and importer_result.json: .cache/galaxy-import)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
DIST="$ROOT/.cache/dist"
WORK="$ROOT/.cache/galaxy-import"
LOG="$WORK/importer.log"

# Informational warnings Galaxy shows on the collection page; anything else fails the import check.
ACCEPTED_WARNINGS=(
  # tests/sanity/ignore-*.txt: the yamllint ignores of Helm's Go templates and captured helm output
  '^WARNING: Ignore files skip ansible-test sanity tests, found ignore-[0-9.]+\.txt with [0-9]+ statement\(s\)$'
)

export PATH="$VENV/bin:$PATH"
# Galaxy runs without this checkout's ansible.cfg and collection paths (`make` exports ANSIBLE_CONFIG).
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_ROLES_PATH
# The dependencies resolve only through sys.path (see above).
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=true

for tool in ansible-galaxy ansible-doc ansible-lint; do
  [ "$(command -v "$tool")" = "$VENV/bin/$tool" ] || { echo "galaxy_import: $VENV/bin/$tool is missing: run 'make setup'" >&2; exit 1; }
done
"$VENV/bin/python" -c 'import galaxy_importer' 2>/dev/null \
  || { echo "galaxy_import: galaxy-importer is not installed in $VENV: run 'make setup'" >&2; exit 1; }

rm -rf "$WORK" && mkdir -p "$WORK"
version="$("$VENV/bin/python" -c 'import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$ROOT/galaxy.yml")"
tarball="$DIST/stellaops-deploy-$version.tar.gz"
rm -f "$tarball"
(cd "$ROOT" && ansible-galaxy collection build --force --output-path "$DIST") >"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log" >&2; echo "galaxy_import: ansible-galaxy collection build failed" >&2; exit 1; }
[ -f "$tarball" ] || { cat "$WORK/build.log" >&2; echo "galaxy_import: the build did not write $tarball" >&2; exit 1; }

start=$SECONDS
status=0
# The importer writes importer_result.json into its working directory.
(cd "$WORK" && python -m galaxy_importer.main "$tarball") >"$LOG" 2>&1 || status=$?
elapsed=$((SECONDS - start))

problems="$(grep -E '^(ERROR|CRITICAL|WARNING)' "$LOG" || true)"
for accepted in "${ACCEPTED_WARNINGS[@]}"; do
  problems="$(grep -vE "$accepted" <<<"$problems" || true)"
done
missing=()
grep -qx 'Linting collection via ansible-lint .*' "$LOG" || missing+=("the ansible-lint step did not start")
grep -qx '\.\.\.ansible-lint run complete' "$LOG" || missing+=("the ansible-lint step did not complete")
grep -qx 'Importer processing completed successfully' "$LOG" || missing+=("the import did not complete")

if [ "$status" -ne 0 ] || [ -n "$problems" ] || [ ${#missing[@]} -gt 0 ]; then
  echo "galaxy-importer on $(basename "$tarball") FAILED (exit code $status, ${elapsed} s; full log: ${LOG#"$ROOT"/}):" >&2
  [ -n "$problems" ] && printf '%s\n' "$problems" >&2
  [ ${#missing[@]} -gt 0 ] && printf '%s\n' "${missing[@]}" >&2
  exit 1
fi
accepted_count="$(grep -cE '^WARNING' "$LOG" || true)"
echo "galaxy-importer on $(basename "$tarball"): no errors, no lint findings, ${accepted_count} accepted warning(s) (${elapsed} s; log: ${LOG#"$ROOT"/})"
