package main

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// kill -9 the real station at random moments while it produces cards: no
// order may be lost and none may yield two cards.
func TestKill9NeverLosesOrDuplicates(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	photos := passPhotos(t)
	const n = 24
	ids := make([]string, n)
	// Each APDU takes as long as on a real chip, so that the kills land
	// mid-encoding as often as mid-photo.
	reader := []string{"--reader", "sim:apdu-delay=15ms"}
	d := startDaemon(t, dir, reader...)
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-%02d", i)
		d.submit(ids[i], photos[i%len(photos)])
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 0; round < 6; round++ {
		// Kill somewhere between mid-photo and mid-encoding of some card.
		time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
		d.kill()
		t.Logf("round %d: killed", round)
		d = startDaemon(t, dir, reader...)
	}
	orders := d.waitFinal(ids, 5*time.Minute)
	d.stop()

	producedOnce(t, ids, orders)
	// The database's own record: one produced card number per order, every
	// other number it was given spoiled, and no number shared.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "station.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT order_id, status, count(*) FROM card_numbers GROUP BY order_id, status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	producedPerOrder := map[string]int{}
	for rows.Next() {
		var id, status string
		var c int
		if err := rows.Scan(&id, &status, &c); err != nil {
			t.Fatal(err)
		}
		switch status {
		case "produced":
			producedPerOrder[id] += c
		case "spoiled":
			t.Logf("%s: %d blank(s) spoiled by the crashes", id, c)
		default:
			t.Errorf("%s has %d card numbers left %s", id, c, status)
		}
	}
	for _, id := range ids {
		if producedPerOrder[id] != 1 {
			t.Errorf("%s has %d produced card numbers", id, producedPerOrder[id])
		}
	}
	reasons, err := db.Query(`SELECT order_id, reason FROM spoiled_blanks`)
	if err != nil {
		t.Fatal(err)
	}
	defer reasons.Close()
	for reasons.Next() {
		var id, why string
		reasons.Scan(&id, &why)
		t.Logf("%s: spoiled because %s", id, why)
	}
	// One face in the spool per order.
	faces, _ := filepath.Glob(filepath.Join(dir, "spool", "*.pdf"))
	perOrder := map[string]int{}
	for _, f := range faces {
		perOrder[strings.SplitN(filepath.Base(f), "_", 2)[0]]++
	}
	for _, id := range ids {
		if perOrder[id] != 1 {
			t.Errorf("%s has %d faces in the spool", id, perOrder[id])
		}
	}
}

// SIGTERM lets the card in hand finish: the order being encoded when the
// signal arrives still ends produced, and the daemon exits cleanly.
func TestSIGTERMFinishesCardInHand(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	d := startDaemon(t, dir)
	photos := passPhotos(t)
	ids := []string{"term-0", "term-1", "term-2"}
	for i, id := range ids {
		d.submit(id, photos[i])
	}
	// Wait for a card to be in hand, then stop.
	deadline := time.Now().Add(time.Minute)
	for {
		o, err := d.order("term-0")
		if err != nil {
			t.Fatal(err)
		}
		if o.State == "encoding" || o.State == "printing" || o.State == "produced" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no card reached the encoder")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.stop()
	d = startDaemon(t, dir)
	// Nothing was left half-done by the graceful stop: no lease was rescued.
	if strings.Contains(d.stderr.String(), "resuming orders left in progress") {
		t.Errorf("graceful stop left work in progress:\n%s", d.stderr.String())
	}
	final := d.waitFinal(ids, 2*time.Minute)
	for _, id := range ids {
		if final[id].State != "produced" {
			t.Errorf("%s ended %s", id, final[id].State)
		}
	}
}
