#!/usr/bin/env bash
# Formats the project's C++ with clang-format (Debian's clang-format-14) and
# the style in .clang-format.
#   tools/format.sh           rewrite every .cc/.h in place, tracked or new
#                             (not ignored): a file formatted before its
#                             `git add` is formatted too
#   tools/format.sh --check   change nothing; list the files that differ and
#                             fail if any does (tests/run.sh runs this)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

formatter="$(command -v clang-format-14 || command -v clang-format || true)"
if [[ -z "$formatter" ]]; then
  echo "clang-format is not installed (tools/install-deps.sh installs it)" >&2
  exit 1
fi

mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h')
if [[ "${1:-}" == "--check" ]]; then
  bad=()
  for f in "${files[@]}"; do
    if ! "$formatter" --dry-run --Werror "$f" >/dev/null 2>&1; then
      bad+=("$f")
    fi
  done
  if ((${#bad[@]} > 0)); then
    printf 'not formatted: %s\n' "${bad[@]}" >&2
    echo "${#bad[@]} of ${#files[@]} files differ from .clang-format; run tools/format.sh" >&2
    exit 1
  fi
  echo "${#files[@]} C++ files formatted as .clang-format says"
else
  "$formatter" -i "${files[@]}"
fi
