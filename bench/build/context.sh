# context.sh: sourced by the bench scripts. make_context DIR writes the build
# benchmark's context there: FILES files of random data totalling about
# SIZE_MB MB in 100 directories, a small deps.txt, and a 13-instruction
# Dockerfile FROM busybox:latest.
make_context() {
	local ctx=$1
	echo "== context: $FILES files, $SIZE_MB MB"
	dirs=100
	per_dir=$(( (FILES + dirs - 1) / dirs ))
	file_bytes=$(( SIZE_MB * 1000 * 1000 / (dirs * per_dir) ))
	for d in $(seq -w 0 $((dirs - 1))); do
		mkdir -p "$ctx/data/d$d"
		head -c $((file_bytes * per_dir)) /dev/urandom | split -b "$file_bytes" -d -a 4 - "$ctx/data/d$d/f"
	done
	printf 'libfoo 1.2\nlibbar 3.4\nlibbaz 5.6\n' >"$ctx/deps.txt"
	cat >"$ctx/Dockerfile" <<-'EOF'
	FROM busybox:latest
	ENV APP_HOME=/app LANG=C.UTF-8
	WORKDIR /app
	RUN mkdir -p bin etc /var/log/app && echo "config=1" > etc/app.conf
	RUN i=0; while [ $i -lt 500 ]; do echo "line $i" >> etc/generated.txt; i=$((i+1)); done
	COPY deps.txt /app/etc/deps.txt
	RUN wc -l etc/deps.txt > etc/deps.count
	COPY data/ /app/data/
	RUN find data -type f | wc -l > etc/file-count && du -s data > etc/size
	RUN printf '#!/bin/sh\necho app\n' > bin/app && chmod +x bin/app
	ENV PATH=/app/bin:$PATH
	EXPOSE 8080
	CMD ["app"]
	EOF
}
