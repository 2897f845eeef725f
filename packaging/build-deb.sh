#!/bin/sh
# Builds the station's Debian package with dpkg-deb and prints its path.
#   packaging/build-deb.sh OUTDIR [VERSION]
# VERSION defaults to 0.0~gitYYYYMMDDhhmmss.HASH of the last commit (UTC), so
# later commits always upgrade earlier ones; a dirty tree adds +dirty.
# Needs go, gcc and the -dev packages of `make deps`, and dpkg-dev.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:?usage: build-deb.sh OUTDIR [VERSION]}
version=${2:-}
GO=${GO:-go}
maintainer=${DEB_MAINTAINER:-ID06 station maintainers <station-maintainers@invalid>}

for tool in "$GO" dpkg-deb dpkg-shlibdeps; do
	if ! command -v "$tool" >/dev/null; then
		echo "build-deb: $tool not found (dpkg-shlibdeps: apt-get install dpkg-dev)" >&2
		exit 1
	fi
done
cd "$root"
if [ -z "$version" ]; then
	if ! version=$(TZ=UTC git log -1 --format='0.0~git%cd.%h' --date=format-local:%Y%m%d%H%M%S 2>/dev/null); then
		echo "build-deb: not a git checkout: give the version (make deb VERSION=1.2.3)" >&2
		exit 1
	fi
	if [ -n "$(git status --porcelain)" ]; then
		version="$version+dirty"
	fi
fi
arch=$(dpkg --print-architecture)
# Timestamps in the package are the last commit's (or now, outside git).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps wants a source tree: debian/control, the package in debian/NAME.
mkdir -p "$work/debian/station/DEBIAN"
: >"$work/debian/control"
pkg=$work/debian/station

"$GO" build -trimpath -ldflags '-s -w' -o "$pkg/usr/bin/station" ./cmd/station
install -D -m 0644 packaging/station.service "$pkg/usr/lib/systemd/system/station.service"
install -D -m 0644 packaging/config.json "$pkg/etc/station/config.json"
install -D -m 0600 packaging/station.env "$pkg/etc/station/station.env"
install -D -m 0644 packaging/60-station-pcscd.rules "$pkg/usr/share/polkit-1/rules.d/60-station-pcscd.rules"
install -D -m 0644 README.md "$pkg/usr/share/doc/station/README.md"
install -D -m 0644 hardware.md "$pkg/usr/share/doc/station/hardware.md"
"$here/copyright.sh" "$pkg/usr/bin/station" >"$pkg/usr/share/doc/station/copyright"
chmod 0644 "$pkg/usr/share/doc/station/copyright"
for s in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$s" "$pkg/DEBIAN/$s"
done
printf '/etc/station/config.json\n/etc/station/station.env\n' >"$pkg/DEBIAN/conffiles"

# Depends: the shared libraries the binary links (dpkg-shlibdeps reads them
# off the ELF file: libc6, libpcsclite1, libjpeg62-turbo), the daemon behind
# libpcsclite, and adduser for the postinst.
shlibs=$(cd "$work" && dpkg-shlibdeps -O debian/station/usr/bin/station | sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
	echo "build-deb: dpkg-shlibdeps found no shared libraries" >&2
	exit 1
fi
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: station
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $shlibs, pcscd, adduser
Section: misc
Priority: optional
Description: ID06 card production station
 The daemon a card supplier runs next to its card printer: it takes ID06
 card orders over an HTTP API, checks the photos, personalises the PIV chip
 through PC/SC and prints the card face. Runs as the systemd service
 station.service under the system user "station"; configuration in
 /etc/station, data in /var/lib/station.
CONTROL

mkdir -p "$out"
deb="$out/station_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
