package main

import (
	"log/slog"
	"net"
)

// sdNotifier tells systemd about the daemon's state (sd_notify(3)) when a
// Type=notify unit runs it: systemd then counts the service as started only
// once it serves, and shows "deactivating" while the card in hand finishes.
// Without $NOTIFY_SOCKET it does nothing.
type sdNotifier struct {
	socket string
	log    *slog.Logger
}

// notify sends one state message, e.g. "READY=1". A failure is logged and
// otherwise ignored: the station works the same without the service manager.
func (n sdNotifier) notify(state string) {
	if n.socket == "" {
		return
	}
	// A leading '@' names an abstract socket; Go's net package maps it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err == nil {
		_, err = conn.Write([]byte(state))
		conn.Close()
	}
	if err != nil {
		n.log.Warn("cannot notify systemd", "socket", n.socket, "err", err)
	}
}
