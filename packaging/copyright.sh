#!/bin/sh
# Writes /usr/share/doc/station/copyright for a built station binary: the
# licence of every Go module linked into it (as `go version -m` lists them),
# of the Go standard library, and of the embedded cascades and fonts. Fails
# when a module ships no licence file, so a new dependency cannot slip in
# without one. Run from the repository root.
#   packaging/copyright.sh BINARY
set -eu
bin=${1:?usage: copyright.sh BINARY}
GO=${GO:-go}

section() { # title, files...
	title=$1
	shift
	printf '\n==== %s ====\n' "$title"
	for f in "$@"; do
		printf '\n--- %s ---\n\n' "$(basename "$f")"
		cat "$f"
	done
}

cat <<'HEAD'
station: the ID06 card production station

/usr/bin/station is a Go program. Besides the station's own code it contains
the Go standard library and the Go modules below, each with its licence, the
face-detection cascades of pigo and the Go fonts (both embedded as data).
SQLite is compiled in through github.com/mattn/go-sqlite3; SQLite itself is
in the public domain. libc6, libpcsclite1 and libjpeg62-turbo are linked
dynamically; their copyright files come with their own packages.
HEAD

goroot=$("$GO" env GOROOT)
section "Go standard library ($("$GO" env GOVERSION))" "$goroot/LICENSE"
section "Face-detection cascades facefinder and puploc (github.com/esimov/pigo, embedded by imaging)" imaging/cascade/LICENSE-pigo
"$GO" version -m "$bin" | awk '$1 == "dep" { print $2, $3 }' | while read -r path version; do
	dir=$("$GO" list -m -f '{{.Dir}}' "$path")
	files=$(find "$dir" -maxdepth 1 -type f \( -iname 'licen[cs]e*' -o -iname 'copying*' -o -iname 'notice*' -o -iname 'patents*' \) | sort)
	if [ -z "$files" ]; then
		echo "copyright.sh: $path $version ships no licence file" >&2
		exit 1
	fi
	# shellcheck disable=SC2086 # one file name per word
	section "$path $version" $files
	if [ "$path" = golang.org/x/image ]; then
		section "Go fonts, Go Regular and Go Bold (golang.org/x/image $version, embedded by printer)" "$dir/font/gofont/ttfs/README"
	fi
done
