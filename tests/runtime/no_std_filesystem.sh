#!/usr/bin/env bash
# Fails when a built library or program imports a std::filesystem symbol (include/dit/fs.h says
# why: under a PyTorch wheel those calls land in libtorch's broken copies and crash).
#   no_std_filesystem.sh <elf>...
set -uo pipefail
bad=0
for f in "$@"; do
  [ -e "$f" ] || { echo "no_std_filesystem: $f: missing (not built?)" >&2; bad=1; continue; }
  syms=$(nm -D --undefined-only "$f" | grep -E 'St10filesystem' | awk '{print $NF}')
  if [ -n "$syms" ]; then
    echo "$f imports std::filesystem (use dit/fs.h):" >&2
    echo "$syms" | sed 's/^/  /' | c++filt >&2
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "no_std_filesystem: $# binaries import no std::filesystem symbol"
exit $bad
