#!/bin/sh
# Renders the site config from the environment, then becomes the server.
set -eu
: "${PORT:=8080}"
case $PORT in *[!0-9]*|'') echo "docker-entrypoint.sh: PORT must be a number, got '$PORT'" >&2; exit 1;; esac
sed "s/@PORT@/$PORT/g" /etc/nginx/templates/site.conf.template > /etc/nginx/conf.d/site.conf
echo "serving $(find /srv/www -type f | wc -l) files on port $PORT" >&2
exec "$@"
