#!/bin/sh
# gen-assets.sh DIR [FILES] [MB]: writes the web example's site into DIR: an
# index.html and FILES (default 3000) asset files totalling about MB (default
# 60) megabytes in 50 directories. The content is a pure function of the
# arguments, so every engine and every run builds the same bytes.
set -eu
dir=$1 files=${2:-3000} mb=${3:-60}
mkdir -p "$dir/assets"
printf '<!doctype html>\n<title>realworld</title>\n<h1>strata realworld web</h1>\n' > "$dir/index.html"
awk -v dir="$dir/assets" -v files="$files" -v bytes="$((mb * 1000 * 1000))" 'BEGIN {
	srand(42)
	per = int(bytes / files)
	line = ""
	for (i = 0; i < 64; i++) line = line sprintf("%c", 97 + i % 26)
	for (f = 0; f < files; f++) {
		d = sprintf("%s/d%02d", dir, f % 50)
		if (f < 50) system("mkdir -p " d)
		p = sprintf("%s/f%05d.css", d, f)
		n = 0
		while (n < per) {
			s = sprintf("/* %d %d */ .c%d{x:%s}\n", f, n, int(rand() * 1e9), substr(line, 1 + f % 40, 24))
			printf "%s", s > p
			n += length(s)
		}
		close(p)
	}
}'
