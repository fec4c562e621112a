#!/usr/bin/env bash
# ansible-test sanity needs the collection under ansible_collections/stellaops/deploy and in git:
# copy the tracked and unignored files there, commit them to a throw-away repository, and run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.cache/sanity/ansible_collections/stellaops/deploy"
PYTHON="$ROOT/.venv/bin/python"

rm -rf "$DEST" && mkdir -p "$DEST"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents -P {} "$DEST/")
git -C "$DEST" init -q
git -C "$DEST" add -A
git -C "$DEST" -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity

# ansible-test fetches a pip bootstrap script from a host this network cannot reach. Its stand-in
# bootstraps the same way from the standard library (ensurepip) and then lets pip install what
# ansible-test asked for from PyPI.
pip_version="$( \
  grep -oP "pip='\K[0-9.]+" "$("$PYTHON" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -n1)"
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if ! cmp -s "$ROOT/scripts/get_pip_ensurepip.py" "$cache"; then
  mkdir -p "$(dirname "$cache")"
  install -m 0644 "$ROOT/scripts/get_pip_ensurepip.py" "$cache"
fi

python_version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
cd "$DEST"
exec "$ROOT/.venv/bin/ansible-test" sanity --python "$python_version" --requirements --color no "$@"
