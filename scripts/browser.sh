#!/usr/bin/env bash
# The browser the web client's end-to-end tests (tests/web.rs) drive:
# Debian's Chromium and ChromeDriver, plus Korean and emoji fonts so the
# screenshots show text, not boxes. Installed with apt-get when missing
# (as root, or through sudo). In CI a failure to install fails the run;
# locally the browser tests then skip with a loud message.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
fc-list 2>/dev/null | grep -qi nanum || need+=(fonts-nanum)
fc-list 2>/dev/null | grep -qi "noto color emoji" || need+=(fonts-noto-color-emoji)
if [ ${#need[@]} -eq 0 ]; then
  echo "browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium), $(/usr/bin/chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"
  exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo -n"; else
    echo "!!! browser: not root and no sudo; cannot install ${need[*]}" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 0
  fi
fi
echo "== installing ${need[*]} (apt-get)"
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null; }; then
  echo "!!! browser: apt-get install ${need[*]} failed" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
echo "browser: $(/usr/bin/chromium --version), $(/usr/bin/chromedriver --version | cut -d' ' -f1-2)"
