package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"id06/queue"
	"id06/queue/pgtest"
	"id06/station/stationtest"
	"id06/webhook/signature"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// receiver is a supplier's webhook endpoint that checks each signature and
// counts deliveries per event, as a receiver de-duplicating on event_id does.
type receiver struct {
	mu       sync.Mutex
	secret   string
	byEvent  map[string]int
	produced map[string]string // order id → event id of its order.produced
	bad      int
}

func newReceiver(t *testing.T, secret string) (*receiver, string) {
	rc := &receiver{secret: secret, byEvent: map[string]int{}, produced: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err := signature.Verify(rc.secret, r.Header.Get(signature.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			rc.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var n struct {
			EventID string `json:"event_id"`
			Type    string `json:"type"`
			OrderID string `json:"order_id"`
		}
		json.Unmarshal(body, &n)
		rc.byEvent[n.EventID]++
		if n.Type == "order.produced" {
			rc.produced[n.OrderID] = n.EventID
		}
	}))
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

// fleetStation is one station of the fleet: its own data directory (two
// lanes of sim reader and sim printer, dev token) and name, the shared
// database. A print takes 1 s, so that the other stations' four lanes do not
// finish every order while the killed one restarts and PostgreSQL still
// restarts under load.
type fleetStation struct {
	name, dir string
	args      []string
	d         *daemon
}

func (f *fleetStation) start(t *testing.T) {
	t.Helper()
	f.d = startDaemon(t, f.dir, f.args...)
}

// Three real stations share one PostgreSQL queue. 90 orders come in round
// robin through their three APIs; one station is killed -9 while it
// produces and restarted later; then PostgreSQL itself restarts under
// load. Every order is produced exactly once, card numbers are distinct,
// and every order.produced notice reaches the supplier.
func TestFleetOfThreeOnPostgres(t *testing.T) {
	skipShort(t, "runs three real stations and a PostgreSQL server")
	srv := pgtest.Shared(t)
	url := pgtest.URL(t)
	rc, hook := newReceiver(t, "fleet-secret")
	cfg := filepath.Join(t.TempDir(), "station.json")
	conf, _ := json.Marshal(map[string]any{"suppliers": []map[string]string{{"name": "dev", "webhook_url": hook, "webhook_secret": "fleet-secret"}}})
	if err := os.WriteFile(cfg, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	stations := make([]*fleetStation, 3)
	for i := range stations {
		name := fmt.Sprintf("floor-%d", i+1)
		stations[i] = &fleetStation{name: name, dir: filepath.Join(t.TempDir(), name),
			args: []string{"--db", url, "--name", name, "--config", cfg,
				"--lane", "a=sim:apdu-delay=10ms,sim:print-time=1s", "--lane", "b=sim:apdu-delay=10ms,sim:print-time=1s"}}
		stations[i].start(t)
	}
	photos := passPhotos(t)
	const n = 90
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fleet-%03d", i)
		d := stations[i%3].d
		code, b, err := d.do(http.MethodPost, "/v1/orders", orderJSON(t, ids[i], photos[i%len(photos)], i%9 == 0))
		if err != nil || code != http.StatusCreated {
			t.Fatalf("submit %s to %s: %d %s %v", ids[i], stations[i%3].name, code, b, err)
		}
	}

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string, args ...any) int {
		var c int
		if err := db.QueryRow(q, args...).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitFor := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, timeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Kill floor-2 while it has a card in hand.
	victim := stations[1]
	waitFor("floor-2 holds a card", time.Minute, func() bool {
		return count(`SELECT count(*) FROM stations WHERE name = $1 AND card_in_hand <> ''`, victim.name) == 1
	})
	victim.d.kill()
	killedAt := time.Now()
	held := count(`SELECT count(*) FROM orders WHERE station = $1 AND lease_owner IS NOT NULL`, victim.name)
	t.Logf("killed %s -9 holding %d orders; %d produced so far", victim.name, held, count(`SELECT count(*) FROM orders WHERE state = 'produced'`))
	time.Sleep(3 * time.Second)
	victim.start(t) // waits until the name is free (its last heartbeat goes stale)
	t.Logf("%s back after %v", victim.name, time.Since(killedAt).Round(time.Second))

	// PostgreSQL restarts while the fleet works; an operator watches the page.
	store, err := queue.Open(url, queue.WithStation("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stationtest.AddUser(t, store, "eva", queue.RoleOperator, stationtest.Password)
	page := stationtest.NewBrowser(t, stations[0].d.url)
	page.LoggedIn("eva", stationtest.Password)
	waitFor("production under way again", time.Minute, func() bool {
		return count(`SELECT count(*) FROM orders WHERE state = 'produced'`) < n && count(`SELECT count(*) FROM stations WHERE card_in_hand <> ''`) > 0
	})
	before := count(`SELECT count(*) FROM orders WHERE state = 'produced'`)
	db.Close()
	restarted := make(chan error, 1)
	go func() { restarted <- srv.Restart(3 * time.Second) }()
	sawPause, pageSaid := false, false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !(sawPause && pageSaid); time.Sleep(100 * time.Millisecond) {
		code, b, err := stations[0].d.do(http.MethodGet, "/readyz", nil)
		sawPause = sawPause || err == nil && code == http.StatusServiceUnavailable && strings.Contains(string(b), "database unavailable")
		r := page.Get("/ui/")
		pageSaid = pageSaid || r.Status == http.StatusServiceUnavailable && strings.Contains(r.Body, "database is not answering")
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if !sawPause {
		t.Error("/readyz never said the database was unavailable while PostgreSQL was down")
	}
	if !pageSaid {
		t.Error("the operator page never said the database was not answering while PostgreSQL was down")
	}
	if db, err = sql.Open("pgx", url); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitFor("readyz ready again", 30*time.Second, func() bool {
		code, b, err := stations[0].d.do(http.MethodGet, "/readyz", nil)
		return err == nil && code == http.StatusOK && strings.Contains(string(b), `"ready"`)
	})
	t.Logf("PostgreSQL restarted with %d of %d produced", before, n)
	if r := page.Get("/ui/"); r.Status != http.StatusOK || !strings.Contains(r.Body, `id="station-floor-1"`) {
		t.Errorf("the dashboard after the restart: %d, fleet shown %v", r.Status, strings.Contains(r.Body, "station-floor"))
	}

	orders := stations[2].d.waitFinal(ids, 5*time.Minute)
	producedOnce(t, ids, orders)
	// The database's own record: one produced card per order, every other
	// number it was given spoiled.
	if c := count(`SELECT count(*) FROM card_numbers WHERE status = 'produced'`); c != n {
		t.Errorf("%d produced card numbers for %d orders", c, n)
	}
	if c := count(`SELECT count(*) FROM card_numbers WHERE status = 'allocated'`); c != 0 {
		t.Errorf("%d card numbers left allocated", c)
	}
	rows, err := db.Query(`SELECT station, count(*) FROM orders GROUP BY station ORDER BY station`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		var c int
		rows.Scan(&st, &c)
		t.Logf("%s made %d cards", st, c)
	}
	rows.Close()
	spoiled, err := db.Query(`SELECT order_id, reason FROM spoiled_blanks ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for spoiled.Next() {
		var id, reason string
		spoiled.Scan(&id, &reason)
		t.Logf("blank spoiled: %s: %s", id, reason)
	}
	spoiled.Close()

	// The fleet view: every station, each reporting, through any one's API.
	if err := store.AddToken(context.Background(), "floor", "st_fleet_operator", []string{"operator"}); err != nil {
		t.Fatal(err)
	}
	view := stations[1].d
	view.token = "st_fleet_operator"
	code, body, err := view.do(http.MethodGet, "/v1/ops/stations", nil)
	var fleet struct {
		Stations []struct {
			Name  string            `json:"name"`
			Live  bool              `json:"live"`
			Lanes []json.RawMessage `json:"lanes"`
		} `json:"stations"`
	}
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &fleet) != nil || len(fleet.Stations) != 3 {
		t.Fatalf("GET /v1/ops/stations: %d %s %v", code, body, err)
	}
	for i, st := range fleet.Stations {
		if st.Name != stations[i].name || !st.Live || len(st.Lanes) != 2 {
			t.Errorf("station %d in the fleet view: %+v", i, st)
		}
	}

	// Every order.produced notice delivered; duplicates are counted, not failed.
	waitFor("every order.produced delivered", 2*time.Minute, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.produced) == n
	})
	if c := count(`SELECT count(*) FROM outbox WHERE type = 'order.produced' AND delivered_at IS NULL`); c != 0 {
		t.Errorf("%d order.produced notices undelivered", c)
	}
	rc.mu.Lock()
	dups := 0
	for _, c := range rc.byEvent {
		dups += c - 1
	}
	t.Logf("webhooks: %d events received, %d duplicate deliveries, %d refused signatures", len(rc.byEvent), dups, rc.bad)
	if rc.bad != 0 {
		t.Errorf("%d deliveries with a bad signature", rc.bad)
	}
	rc.mu.Unlock()
	for _, s := range stations {
		s.d.stop()
	}
}

// The database verbs work on PostgreSQL as on SQLite: migrate reports the
// schema, backup calls pg_dump into an owner-only file.
func TestDBVerbsOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	out, errOut, code := runCLI(t, "db", "migrate", "--db", url)
	if code != 0 || !strings.Contains(out, "(postgres) is at schema 00") || !strings.Contains(out, "005_fleet") || strings.Contains(out, "password") {
		t.Fatalf("db migrate: %d %q %q", code, out, errOut)
	}
	dest := filepath.Join(t.TempDir(), "fleet.dump")
	out, errOut, code = runCLI(t, "db", "backup", "--db", url, dest)
	if code != 0 || !strings.Contains(out, "backup written to") {
		t.Fatalf("db backup: %d %q %q", code, out, errOut)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dump: %v %v", fi, err)
	}
	if _, errOut, code = runCLI(t, "db", "migrate", "--db", "mysql://x"); code == 0 || !strings.Contains(errOut, "use sqlite:PATH or postgres://") {
		t.Fatalf("db migrate accepted a database it cannot use: %q", errOut)
	}
}

// BenchmarkFleetIntake posts orders with real portraits through the APIs of
// 1 or 3 real stations on one PostgreSQL (and 1 on SQLite), 4 clients at
// once, round robin, while the stations also work the orders they take. Run
// with a fixed count under the API's burst, e.g. -benchtime=300x.
func BenchmarkFleetIntake(b *testing.B) {
	for _, tc := range []struct {
		name     string
		stations int
		pg       bool
	}{{"postgres/stations=1", 1, true}, {"postgres/stations=3", 3, true}, {"sqlite/stations=1", 1, false}} {
		b.Run(tc.name, func(b *testing.B) {
			var args []string
			if tc.pg {
				args = []string{"--db", pgtest.URL(b)}
			}
			daemons := make([]*daemon, tc.stations)
			for i := range daemons {
				name := fmt.Sprintf("bench-%d", i)
				daemons[i] = startDaemon(b, filepath.Join(b.TempDir(), name), append([]string{"--name", name}, args...)...)
			}
			photos := passPhotos(b)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = orderJSON(b, fmt.Sprintf("intake-%06d", i), photos[i%len(photos)], false)
			}
			next := make(chan int, b.N)
			for i := range b.N {
				next <- i
			}
			close(next)
			b.ResetTimer()
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						code, body, err := daemons[i%len(daemons)].do(http.MethodPost, "/v1/orders", bodies[i])
						if err != nil || code != http.StatusCreated {
							b.Errorf("order %d: %d %s %v", i, code, body, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
			b.StopTimer()
			for _, d := range daemons {
				d.kill()
			}
		})
	}
}
