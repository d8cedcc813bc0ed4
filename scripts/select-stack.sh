#!/usr/bin/env bash
# Selects (or creates) the stack, logging in to a local state backend when the user has none:
# no Pulumi account is needed.
set -euo pipefail
stack=$1
if ! pulumi whoami >/dev/null 2>&1; then
  echo "No Pulumi backend is logged in; using the local backend in ~/.pulumi (pulumi login --local)." >&2
  pulumi login --local >/dev/null
fi
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && pulumi whoami --verbose 2>/dev/null | grep -q 'file://'; then
  echo "Note: the local backend encrypts secrets with a passphrase; pulumi will ask for it" \
       "(or export PULUMI_CONFIG_PASSPHRASE to skip the prompt)." >&2
fi
pulumi stack select --create "$stack" >/dev/null
echo "Stack: $stack" >&2
