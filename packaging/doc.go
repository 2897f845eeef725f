// Package packaging holds the station's Debian package: build-deb.sh (what
// `make deb` runs), the systemd unit, the default configuration, the
// maintainer scripts, and the tests that build, inspect and install it.
package packaging
