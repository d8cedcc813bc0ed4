#!/usr/bin/env bash
# Builds a real kube-apiserver of VERSION (and the etcd its module pins) from the Go module proxy,
# once, into ~/.cache/data-ingestion/kube-apiserver/VERSION/{kube-apiserver,etcd}, and prints that
# directory. k8s.io/kubernetes replaces its staging modules (k8s.io/api, client-go, …) with its own
# ./staging tree; a module that requires it must repeat those replacements at the matching v0.x
# tags. About 18 minutes cold on 2 cores; the Go caches then hold ~3 GB.
set -euo pipefail
version=${1:?usage: build-kube-apiserver.sh VERSION (e.g. 1.36.3)}
dest="${XDG_CACHE_HOME:-$HOME/.cache}/data-ingestion/kube-apiserver/$version"
if [ -x "$dest/kube-apiserver" ] && [ -x "$dest/etcd" ]; then
  echo "$dest"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "Go not found: install Go to build kube-apiserver $version" >&2; exit 1; }
staging_version="0.${version#1.}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init kube-apiserver-build >/dev/null 2>&1
mkdir -p etcd
printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > tools.go
# etcd's own main is a module of its own; its server module's entry point is the same program.
printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' \
  > etcd/main.go
go mod edit -require "k8s.io/kubernetes@v$version"
# The staging modules k8s.io/kubernetes replaces, read from its own go.mod.
go mod download -json "k8s.io/kubernetes@v$version" >/dev/null
gomod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$version.mod
mapfile -t staging < <(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod")
[ ${#staging[@]} -gt 0 ] || { echo "no staging replacements found in k8s.io/kubernetes v$version's go.mod" >&2; exit 1; }
for module in "${staging[@]}"; do
  go mod edit -replace "$module=$module@v$staging_version"
done
go mod tidy >&2
mkdir -p "$dest"
go build -o "$dest/kube-apiserver.partial" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -o "$dest/etcd.partial" ./etcd >&2
mv "$dest/kube-apiserver.partial" "$dest/kube-apiserver"
mv "$dest/etcd.partial" "$dest/etcd"
echo "$dest"
