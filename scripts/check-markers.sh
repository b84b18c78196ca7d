#!/usr/bin/env bash
# Every marker of unfinished work names its issue: T''ODO(#12): what is missing.
# The words are split below so this script does not flag itself.
set -euo pipefail
marker='(TO''DO|FIX''ME|X''XX)'
linked='(TO''DO|FIX''ME)\(#[0-9]+\)'
unlinked=$(git grep -nE "$marker" -- '*.rs' '*.toml' '*.sh' '*.yaml' '*.yml' Makefile | grep -vE "$linked" || true)
if [ -n "$unlinked" ]; then
  echo "markers without an issue number (write them with (#N)):"
  echo "$unlinked"
  exit 1
fi
