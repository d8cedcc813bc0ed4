#!/usr/bin/env bash
# Names every missing prerequisite at once, with what to do about it.
#   check-prereqs.sh test   what `make test` needs
#   check-prereqs.sh up [stack]       what `make up` needs, for this stack (Docker memory, AWS)
#   check-prereqs.sh destroy [stack]  the same tools, and AWS credentials
#   check-prereqs.sh tools            the tools `make up` needs, before anything is installed
set -uo pipefail
purpose=${1:-up}
stack=${2:-dev}
missing=()
KIND_MINIMUM=0.33.0

# Whether version $1 is at least $2 (dotted numbers).
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  missing+=("Python >= 3.11 ('$python' not found): install it, or run make with PYTHON=/path/to/python3.11")
elif ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  missing+=("Python >= 3.11 ('$python' is $("$python" -V 2>&1)): run make with PYTHON=/path/to/python3.11")
elif ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=("Python's venv module: on Debian/Ubuntu 'apt-get install python3-venv'")
fi

if [ "$purpose" = up ] || [ "$purpose" = destroy ] || [ "$purpose" = tools ]; then
  command -v docker >/dev/null || missing+=("Docker: install Docker Desktop or Docker Engine (https://docs.docker.com/get-docker/)")
  if command -v docker >/dev/null && ! docker info >/dev/null 2>&1; then
    missing+=("a running Docker engine: start Docker (docker info fails)")
  fi
  if ! command -v kind >/dev/null; then
    missing+=("kind >= v$KIND_MINIMUM: https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
  else
    kind_version=$(kind version 2>/dev/null | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | head -1)
    if ! at_least "${kind_version#v}" "$KIND_MINIMUM"; then
      missing+=("kind >= v$KIND_MINIMUM (found ${kind_version:-an unknown version}; its node images are pinned for v$KIND_MINIMUM): https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
    fi
  fi
  command -v kubectl >/dev/null || missing+=("kubectl (make verify, make status and the README's commands use it): https://kubernetes.io/docs/tasks/tools/")
  if ! command -v pulumi >/dev/null; then
    missing+=("the Pulumi CLI: https://www.pulumi.com/docs/install/")
  else
    # The CLI of the SDK requirements.txt pins: another minor version may plan differently.
    pinned=$(sed -n 's/^pulumi==//p' "$(dirname "$0")/../requirements.txt")
    cli=$(pulumi version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)
    if [ "${cli%.*}" != "${pinned%.*}" ]; then
      echo "Warning: the Pulumi CLI is ${cli:-of an unknown version}; this project pins $pinned (requirements.txt," \
           "and the workflows' CLI). Another minor version may preview differently: https://www.pulumi.com/docs/install/versions/" >&2
    fi
  fi
  if [ "$purpose" != tools ]; then
    # Docker's memory for this stack, and AWS credentials that AWS accepts (STS GetCallerIdentity).
    while IFS= read -r problem; do
      [ -n "$problem" ] && missing+=("$problem")
    done < <("${VENV_PY:-.venv/bin/python}" "$(dirname "$0")/stack_prereqs.py" --stack "$stack" --for "$purpose")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "Missing prerequisites for 'make $purpose':" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
