#!/usr/bin/env bash
# Builds the Pulumi CLI of VERSION from the Go module proxy, once, into
# ~/.cache/data-ingestion/pulumi-cli/VERSION/pulumi, and prints its path. About 5 minutes cold.
set -euo pipefail
version=${1:?usage: build-pulumi-cli.sh VERSION}
dest="${XDG_CACHE_HOME:-$HOME/.cache}/data-ingestion/pulumi-cli/$version"
if [ -x "$dest/pulumi" ]; then
  echo "$dest/pulumi"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "Go not found: install Go to build the Pulumi CLI $version" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init pulumi-cli-build >/dev/null 2>&1
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > tools.go
# The CLI's module replaces this dependency with a fork; a dependency's replacements do not apply
# to the module that builds it, so the build repeats it.
go mod edit -replace github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
go get "github.com/pulumi/pulumi/pkg/v3@v$version" "github.com/pulumi/pulumi/sdk/v3@v$version" >&2
go mod tidy >&2
mkdir -p "$dest"
go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" -o "$dest/pulumi.partial" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2
mv "$dest/pulumi.partial" "$dest/pulumi"
echo "$dest/pulumi"
