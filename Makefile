# Two commands do everything on a fresh Debian machine (Go 1.26 installed):
#   make run    build, install missing system packages, start the daemon
#   make test   every test, with the real pcscd, ippeveprinter, poppler, Chromium
#   make deb    the Debian package for the print-floor PC (bin/station_*.deb)
GO      ?= go
BIN     := bin/station
# Needed to build (cgo: SQLite, PC/SC, libjpeg-turbo).
BUILD_PKGS := gcc pkg-config libpcsclite-dev libjpeg62-turbo-dev
# Needed to build the Debian package (dpkg-shlibdeps derives its Depends).
DEB_PKGS   := dpkg-dev
# Needed by the tests: the real devices' software and the independent checkers;
# systemd and adduser for the package's tests (systemd-analyze, dpkg -i).
TEST_PKGS  := pcscd vsmartcard-vpcd opensc yubico-piv-tool poppler-utils cups-ipp-utils \
              dbus chromium libvips-tools iproute2 util-linux openssl fonts-dejavu-core \
              $(DEB_PKGS) systemd adduser softhsm2 postgresql

.PHONY: run build deb test bench deps test-deps clean

deps:
	@scripts/ensure-packages.sh $(BUILD_PKGS)

test-deps: deps
	@scripts/ensure-packages.sh $(TEST_PKGS)

build: deps
	$(GO) build -o $(BIN) ./cmd/station

# bin/station_VERSION_ARCH.deb; VERSION defaults to 0.0~gitDATE.HASH of HEAD.
deb: deps
	@scripts/ensure-packages.sh $(DEB_PKGS)
	GO=$(GO) packaging/build-deb.sh bin $(VERSION)

run: build
	./$(BIN) serve

test: test-deps
	$(GO) test -count=1 -timeout 40m ./...

bench: test-deps build
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

clean:
	rm -rf bin
