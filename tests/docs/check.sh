#!/usr/bin/env bash
# The repository stands alone: no file refers to design notes that are not
# in it or to paths of one machine, and every relative link in the Markdown
# files leads to a file that exists. Run by CTest as test_docs_self_contained.
#   check.sh <frt source dir>
set -uo pipefail
src=$1
cd "$src" || exit 1
status=0

# Notes that lived beside the repository once, and absolute paths of the
# machines it was written on.
outside='(DESIGN|DEPENDENCIES|API)\.md|/work/|/home/[a-z]|/root/'
# (tests/docs, this check, is left out: it names them.)
hits=$(grep -rnIE "$outside" README.md CMakeLists.txt CMakePresets.json cmake examples include \
         runtime brc collector stress tests .ci --exclude-dir=docs 2>/dev/null
       grep -rnIE "$outside" docs)
if [[ -n $hits ]]; then
  echo "references to files outside the repository or to machine paths:"
  echo "$hits"
  status=1
fi

# Relative Markdown links: [text](path) or [text](path#anchor).
while IFS= read -r md; do
  dir=$(dirname "$md")
  while IFS= read -r target; do
    path=${target%%#*}
    [[ -z $path || $path == http* || $path == mailto:* ]] && continue
    if [[ ! -e $dir/$path ]]; then
      echo "$md: broken link to $target"
      status=1
    fi
  done < <(grep -oE '\]\([^) ]+\)' "$md" | sed -E 's/^\]\((.*)\)$/\1/')
done < <(find README.md docs examples -name '*.md')

[[ $status -eq 0 ]] && echo "docs self-contained: ok"
exit $status
