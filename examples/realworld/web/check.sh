#!/bin/sh
# check.sh ENGINE IMAGE: the entrypoint renders the config from PORT and nginx
# serves the index and the assets byte for byte (compared with the context).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ctx=${CONTEXT:-$here}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
id=$("$1" run -d --network host -e PORT="$port" "$2")
trap '"$1" rm -f "$id" >/dev/null 2>&1 || true' EXIT
i=0
until curl -fsS -o /dev/null "http://127.0.0.1:$port/"; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "web: nginx never answered on $port" >&2; "$1" logs "$id" >&2; exit 1; }
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/" | grep -q 'strata realworld web'
for f in assets/d00/f00000.css assets/d17/f01017.css assets/d49/f02999.css; do
	[ "$(curl -fsS "http://127.0.0.1:$port/$f" | sha256sum)" = "$(sha256sum < "$ctx/site/$f")" ] || { echo "web: $f differs" >&2; exit 1; }
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")
[ "$code" = 404 ] || { echo "web: /nope gave $code" >&2; exit 1; }
