#!/usr/bin/env bash
# Selects (or creates) the stack, logging in to a local state backend when the user has none:
# no Pulumi account is needed.
set -euo pipefail
stack=$1
if ! pulumi whoami >/dev/null 2>&1; then
  echo "No Pulumi backend is logged in; using the local backend in ~/.pulumi (pulumi login --local)." >&2
  pulumi login --local >/dev/null
fi
# Read whole before matching: grep -q stops at the match, and under pipefail pulumi's SIGPIPE on the
# lines after it would make the match fail.
backend=$(pulumi whoami --verbose 2>/dev/null || true)
if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [[ $backend == *"Backend URL: file://"* ]]; then
  # The local backend encrypts the stack's secrets with a passphrase, which Pulumi asks for only on
  # a terminal; without one it would refuse (or wait on a question nobody sees).
  if [ ! -t 0 ] || [ ! -t 1 ]; then
    echo "The local backend encrypts this stack's secrets with a passphrase, and there is no terminal to ask" \
         "for it: export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE, a file holding it) and run" \
         "again." >&2
    exit 1
  fi
  echo "Note: the local backend encrypts secrets with a passphrase; pulumi asks for it below" \
       "(export PULUMI_CONFIG_PASSPHRASE to skip the question)." >&2
fi
# Pulumi's questions go to standard output: on the terminal, not away.
pulumi stack select --create "$stack" >&2
echo "Stack: $stack" >&2
