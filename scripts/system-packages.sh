#!/bin/sh
# Debian packages the test suite drives for real: Chromium (the usage page, through Playwright)
# and Prometheus (promtool and a live scrape of the dispatcher). Installed only as root with
# apt-get, only when missing, quietly; never fails the set-up: the tests that need them skip
# with the reason when they are absent.
set -u
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || missing="$missing prometheus"
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note:$missing not installed (needs root and apt-get); the tests that use them will skip"
    exit 0
fi
# Installing Debian's prometheus would start it as a service on :9090; the tests start their own.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
        || echo "note: apt-get could not install$missing; the tests that use them will skip"
fi
[ -z "$own_policy" ] || rm -f "$policy"
exit 0
