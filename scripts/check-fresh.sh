#!/usr/bin/env bash
# Guard for the fresh-machine path of scripts/services.sh, cheap enough for
# every CI run: `services.sh install` into an EMPTY cache must create every
# folder it writes to and leave working binaries behind.
#
# SecantusDB is really installed (pip, seconds). Building tansu takes ~10
# minutes, so the cargo step runs through a stand-in that does what
# `cargo install --root R` does (put the binary, already built by the
# normal run, under R/bin) after checking the arguments it was given.
# The full path, cargo build included, is what a clone on a new machine
# runs: `JANGTEO_CACHE=$(mktemp -d) bash .ci/run`.
set -euo pipefail
cd "$(dirname "$0")/.."

REAL_CACHE=${JANGTEO_CACHE:-$HOME/.cache/jangteo}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
built=$REAL_CACHE/tansu/bin/tansu
if [ ! -x "$built" ]; then
  # Kafka came from elsewhere (JT_TEST_KAFKA_BROKERS): the stand-in puts a
  # placeholder, which is enough to check the folders.
  built=$work/placeholder-tansu
  printf '#!/bin/sh\nexit 0\n' >"$built"
  chmod +x "$built"
fi
fresh=$work/cache/does/not/exist/yet
cat >"$work/cargo" <<STUB
#!/usr/bin/env bash
set -eu
echo "stand-in cargo: \$*"
[ "\$1" = install ] && [ "\$2" = tansu ] || { echo "unexpected: \$*" >&2; exit 1; }
case " \$* " in *" --version "*) ;; *) echo "tansu version not pinned" >&2; exit 1 ;; esac
root=
while [ \$# -gt 0 ]; do [ "\$1" = --root ] && root=\$2; shift; done
[ -n "\$root" ] || { echo "no --root" >&2; exit 1; }
mkdir -p "\$root/bin" && cp "$built" "\$root/bin/tansu"
STUB
chmod +x "$work/cargo"

JANGTEO_CACHE=$fresh JANGTEO_SERVICES_DIR=$work/state JANGTEO_CARGO=$work/cargo \
  scripts/services.sh install
for f in "$fresh/tansu/bin/tansu" "$fresh/secantus-venv/bin/secantusd-py"; do
  [ -x "$f" ] || { echo "!!! fresh install left no $f" >&2; exit 1; }
done
"$fresh/tansu/bin/tansu" --help >/dev/null
"$fresh/secantus-venv/bin/python" -c 'import pymongo' 
grep -q "stand-in cargo: install tansu" "$fresh/tansu-install.log"
echo "fresh-machine install path: ok (empty cache at $fresh)"
