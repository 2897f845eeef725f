package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeNotifiesSystemd plays systemd's part of a Type=notify unit: the
// daemon must say READY=1 only when it answers, and STOPPING=1 on SIGTERM.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d := startDaemonEnv(t, t.TempDir(), append(os.Environ(), "NOTIFY_SOCKET="+sock))

	msg := readNotify(t, conn)
	if msg != "READY=1\nSTATUS=listening on "+strings.TrimPrefix(d.url, "http://") {
		t.Fatalf("first notification %q", msg)
	}
	resp, err := http.Get(d.url + "/healthz")
	if err != nil {
		t.Fatalf("READY=1 sent but /healthz fails: %v", err)
	}
	resp.Body.Close()

	d.stop()
	if msg := readNotify(t, conn); msg != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", msg)
	}
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	return string(buf[:n])
}
