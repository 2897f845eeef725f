package ui

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// liveVersion fingerprints what the live pages show, so that the event
// stream can tell a page when it is out of date.
func (u *UI) liveVersion(ctx context.Context) string {
	c, _ := u.store.Changes(ctx)
	paused, msg := u.pipeline.Paused()
	v := fmt.Sprintf("%s|%v|%s", c, paused, msg)
	for _, l := range u.pipeline.Lanes(ctx) {
		v += fmt.Sprintf("|%s:%s:%s:%d", l.Name, l.State, l.Reason, l.Blanks)
		if l.Card != nil {
			v += ":" + l.Card.Order + ":" + l.Card.Step
		}
	}
	return v
}

// uiEvents streams "change" events to the page: from the hub for changes
// made through the API, and by polling the database's change fingerprint
// for what the pipeline and the deliverer do.
func (u *UI) uiEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ch, cancel := u.hub.subscribe()
	defer cancel()
	fingerprint := func() string { return u.liveVersion(r.Context()) }
	last := fingerprint()
	tick := time.NewTicker(u.poll)
	defer tick.Stop()
	idle := 0
	send := func(msg string) bool {
		// The server's WriteTimeout would cut a long stream; each write
		// gets its own deadline instead.
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprint(w, msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The page was rendered before this stream opened: if anything changed
	// in between (the page says what it saw), start with a refresh.
	hello := "retry: 2000\n\n"
	if r.URL.Query().Get("v") != last {
		hello += "event: change\ndata: missed\n\n"
	}
	if !send(hello) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-u.stopping:
			return
		case <-ch:
			last = fingerprint()
			if !send("event: change\ndata: api\n\n") {
				return
			}
		case <-tick.C:
			if now := fingerprint(); now != last {
				last, idle = now, 0
				if !send("event: change\ndata: station\n\n") {
					return
				}
			} else if idle++; idle*int(u.poll/time.Millisecond) >= 15000 {
				idle = 0
				if !send(": keep-alive\n\n") {
					return
				}
			}
		}
	}
}

// hub fans "something changed" out to the operator page's event streams.
type hub struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: map[chan struct{}]struct{}{}} }

func (h *hub) subscribe() (ch chan struct{}, cancel func()) {
	ch = make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *hub) publish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending for this subscriber
		}
	}
}

// Changed tells the open pages that something they show changed (the API
// calls it after each change it makes).
func (u *UI) Changed() { u.hub.publish() }
