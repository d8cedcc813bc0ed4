#!/usr/bin/env bash
# Names every missing prerequisite at once, with what to do about it.
#   check-prereqs.sh test   what `make test` needs
#   check-prereqs.sh up     what `make up` needs
set -uo pipefail
purpose=${1:-up}
missing=()

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  missing+=("Python >= 3.11 ('$python' not found): install it, or run make with PYTHON=/path/to/python3.11")
elif ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  missing+=("Python >= 3.11 ('$python' is $("$python" -V 2>&1)): run make with PYTHON=/path/to/python3.11")
elif ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=("Python's venv module: on Debian/Ubuntu 'apt-get install python3-venv'")
fi

if [ "$purpose" = up ]; then
  command -v docker >/dev/null || missing+=("Docker: install Docker Desktop or Docker Engine (https://docs.docker.com/get-docker/)")
  if command -v docker >/dev/null && ! docker info >/dev/null 2>&1; then
    missing+=("a running Docker engine: start Docker (docker info fails)")
  fi
  command -v kind >/dev/null || missing+=("kind >= v0.33.0: https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
  command -v pulumi >/dev/null || missing+=("the Pulumi CLI: https://www.pulumi.com/docs/install/")
  if [ -z "${AWS_ACCESS_KEY_ID:-}${AWS_PROFILE:-}${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ] \
     && [ ! -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ] \
     && [ ! -f "${AWS_CONFIG_FILE:-$HOME/.aws/config}" ]; then
    missing+=("AWS credentials: run 'aws configure' (or 'aws sso login'), or export AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "Missing prerequisites for 'make $purpose':" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
