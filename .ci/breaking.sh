#!/usr/bin/env bash
# buf breaking against main's previous commit, when there is one with protos.
# The previous commit's protos are built into an image in a temporary
# worktree, given the same third-party protos as `make generate` uses.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF="go tool -modfile=tools/go.mod buf"
prev=$(git rev-parse -q --verify HEAD~1 || true)
if [ -z "$prev" ]; then
  echo "breaking: no previous commit; nothing to compare against"
  exit 0
fi
if ! git cat-file -e "$prev:buf.yaml" 2>/dev/null; then
  echo "breaking: previous commit ${prev:0:12} has no buf.yaml; nothing to compare against"
  exit 0
fi
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/prev" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add --detach -q "$tmp/prev" "$prev"
mkdir -p "$tmp/prev/.build"
cp -r .build/protodeps "$tmp/prev/.build/protodeps"
$BUF breaking proto --against "$tmp/prev/proto"
echo "breaking: no breaking change against ${prev:0:12}"
