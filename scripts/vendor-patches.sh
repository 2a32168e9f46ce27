#!/usr/bin/env bash
# Lists the patch of each vendored crate (vendor/*) against the crate as published, which the
# commit that first added the directory holds, and fails naming every hunk that carries no
# `sshfs-rs patch` marker (vendor/README.md). Line endings and whitespace are ignored, so a
# file whose line endings changed shows only its real changes.
#   scripts/vendor-patches.sh          check the markers
#   scripts/vendor-patches.sh --diff   print the whole patch as well
set -euo pipefail
cd "$(dirname "$0")/.."
show=${1:-}
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "skipped: not a git checkout" >&2
    exit 0
fi
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
    echo "skipped: a shallow clone has not the commits that added vendor/ (git fetch --unshallow)" >&2
    exit 0
fi
status=0
for dir in vendor/*/; do
    dir=${dir%/}
    base=$(git log --diff-filter=A --format=%H -- "$dir/Cargo.toml" | tail -n 1)
    if [ -z "$base" ]; then
        echo "skipped: $dir: the commit that added it is not in this clone (shallow?)" >&2
        continue
    fi
    diff=$(git diff -w --ignore-cr-at-eol -U3 "$base" -- "$dir")
    if [ "$show" = --diff ]; then
        printf '%s\n' "$diff"
    fi
    unmarked=$(printf '%s\n' "$diff" | awk '
        /^\+\+\+ / { file = substr($2, 3); next }
        /^@@/ { if (hunk != "" && !marked) print hunk; hunk = file " " $0; marked = 0; next }
        /^[ +]/ && /sshfs-rs patch/ { marked = 1 }
        END { if (hunk != "" && !marked) print hunk }')
    if [ -n "$unmarked" ]; then
        echo "$dir: hunks without an 'sshfs-rs patch' marker (base ${base:0:10}):"
        printf "%s\n" "$unmarked" | sed "s/^/  /"
        status=1
    fi
done
exit $status
