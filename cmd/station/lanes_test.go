package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"id06/lane"
	"id06/personalize/pcscdtest"
	"id06/printer/ippetest"
	"id06/queue"
	"id06/station/stationtest"
)

// opsToken makes an operator-scope token before the daemon starts.
func opsToken(t testing.TB, dir string) string {
	t.Helper()
	out, stderr, code := runIn(t, "", "token", "create", "--supplier", "floor", "--scope", "operator", "--data", dir)
	if code != 0 {
		t.Fatalf("token create: %s", stderr)
	}
	return strings.TrimSpace(out)
}

// ops calls the operator API with token.
func (d *daemon) ops(t testing.TB, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	saved := d.token
	d.token = token
	defer func() { d.token = saved }()
	code, out, err := d.do(method, path, b)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

func (d *daemon) lanes(t testing.TB, token string) map[string]lane.Snapshot {
	t.Helper()
	code, b := d.ops(t, token, http.MethodGet, "/v1/ops/lanes", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/ops/lanes: %d %s", code, b)
	}
	var list struct{ Lanes []lane.Snapshot }
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]lane.Snapshot{}
	for _, l := range list.Lanes {
		out[l.Name] = l
	}
	return out
}

// sealedPIN opens an order's sealed PIN with the development age key in
// the station's data directory, as the supplier's PIN letter process does.
func sealedPIN(t *testing.T, dir, orderID string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "station.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sealed []byte
	if err := db.QueryRow(`SELECT sealed_secrets FROM orders WHERE id = ?`, orderID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	key, err := os.Open(filepath.Join(dir, "pki", "supplier-age.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	ids, err := age.ParseIdentities(key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(sealed)), ids...)
	if err != nil {
		t.Fatal(err)
	}
	var secrets struct{ PIN string }
	if err := json.NewDecoder(r).Decode(&secrets); err != nil || secrets.PIN == "" {
		t.Fatalf("sealed secrets of %s: %v", orderID, err)
	}
	return secrets.PIN
}

// submitAll posts the orders concurrently, as a supplier's system does.
func (d *daemon) submitAll(t testing.TB, ids []string) {
	t.Helper()
	photos := passPhotos(t)
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			code, b, err := d.do(http.MethodPost, "/v1/orders", orderJSON(t, id, photos[i%len(photos)], i%10 == 3))
			if err != nil || code != http.StatusCreated {
				errs <- fmt.Errorf("order %s: %d %s %v", id, code, b, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// simJobs reads how often each job was submitted to a lane's simulated
// printer, from the printer's own state.
func simJobs(t *testing.T, dir, laneName string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "sim", "lanes", laneName, "printer", "printer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Jobs map[string]struct{ Submitted int }
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for id, j := range st.Jobs {
		out[id] = j.Submitted
	}
	return out
}

// Three simulated lanes, 60 orders, lane b's hopper holds 5 blanks: b
// pauses out of cards after 5 cards while a and c make the rest; resuming
// b refills it and puts it back to work; every order is produced once, and
// the order (API and page) and its trail name the card's lane.
func TestThreeLanes60Orders(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	ops := opsToken(t, dir)
	store, err := queue.Open(filepath.Join(dir, "station.db"))
	if err != nil {
		t.Fatal(err)
	}
	stationtest.AddUser(t, store, "eva", queue.RoleOperator, stationtest.Password)
	store.Close()
	d := startDaemon(t, dir, "--lane", "a=sim,sim:print-time=150ms", "--lane", "b=sim,sim:cards=5:print-time=150ms",
		"--lane", "c=sim,sim:print-time=150ms")
	const n = 60
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("lanes-%02d", i)
	}
	d.submitAll(t, ids)

	// Lane b pauses with "out of cards" after its 5 blanks.
	var b lane.Snapshot
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if b = d.lanes(t, ops)["b"]; b.State == lane.Paused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lane b never paused: %+v\n%s", b, d.stderr.String())
		}
	}
	if !strings.Contains(b.Reason, "Out of cards") || b.Blanks != 0 || b.Fault != "transport" {
		t.Fatalf("lane b paused with %+v, want out of cards", b)
	}
	if b.Card != nil {
		t.Fatalf("lane b holds %+v: an order it could not feed must go to another lane", b.Card)
	}
	// a and c make the rest while b waits for an operator.
	orders := d.waitFinal(ids, 5*time.Minute)
	if l := d.lanes(t, ops)["b"]; l.State != lane.Paused {
		t.Fatalf("lane b left its pause by itself: %+v", l)
	}
	code, body := d.ops(t, ops, http.MethodPost, "/v1/ops/lanes/b/resume", nil)
	if code != http.StatusOK {
		t.Fatalf("resume b: %d %s", code, body)
	}
	var resumed lane.Snapshot
	if err := json.Unmarshal(body, &resumed); err != nil || resumed.State == lane.Paused || resumed.Blanks != 5 {
		t.Fatalf("lane b after the resume: %+v %v; want its hopper refilled", resumed, err)
	}
	more := []string{"more-0", "more-1", "more-2", "more-3", "more-4", "more-5", "more-6", "more-7", "more-8"}
	d.submitAll(t, more)
	after := d.waitFinal(more, 2*time.Minute)

	byLane := map[string]int{}
	cards := map[string]string{}
	jobs := map[string]map[string]int{}
	for _, name := range []string{"a", "b", "c"} {
		jobs[name] = simJobs(t, dir, name)
	}
	for id, o := range orders {
		if o.State != "produced" {
			t.Errorf("%s ended %s", id, o.State)
			continue
		}
		byLane[o.Lane]++
		if prev, dup := cards[o.CardNumber]; dup {
			t.Errorf("card %s made for %s and %s", o.CardNumber, prev, id)
		}
		cards[o.CardNumber] = id
		produced, claimed, printed := 0, false, false
		for _, e := range o.Events {
			produced += map[bool]int{true: 1}[e.State == "produced"]
			claimed = claimed || strings.HasPrefix(e.Note, "claimed on lane "+o.Lane)
			printed = printed || e.Note == "card "+o.CardNumber+" printed on lane "+o.Lane
		}
		if produced != 1 || !claimed || !printed {
			t.Errorf("%s: %d produced events, lane %q named when claimed %v and printed %v", id, produced, o.Lane, claimed, printed)
		}
		job := id + "_" + o.CardNumber
		if jobs[o.Lane][job] != 1 {
			t.Errorf("%s: job %s submitted %d times to lane %s's printer", id, job, jobs[o.Lane][job], o.Lane)
		}
	}
	if byLane["b"] != 5 || byLane["a"]+byLane["c"] != n-5 || byLane["a"] == 0 || byLane["c"] == 0 {
		t.Errorf("cards by lane %v: want b exactly its 5 blanks (resumed only after the 60), a and c the rest", byLane)
	}
	resumedB := 0
	for _, o := range after {
		if o.State == "produced" && o.Lane == "b" {
			resumedB++
		}
	}
	if resumedB == 0 {
		t.Errorf("lane b made none of the orders after its resume: %v", after)
	}
	// The operator page names the lane too.
	br := stationtest.NewBrowser(t, d.url)
	br.LoggedIn("eva", stationtest.Password)
	page := br.Get("/ui/orders/lanes-07")
	if want := `id="lane">` + orders["lanes-07"].Lane + `<`; page.Status != http.StatusOK || !strings.Contains(page.Body, want) {
		t.Errorf("order page: %d, lacks %s", page.Status, want)
	}
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{fmt.Sprintf(`station_cards_produced_total\{lane="b",station="[^"]+"\} %d\n`, 5+resumedB),
		`station_lane_state\{lane="b",state="idle",station="[^"]+"\} 1\n`} {
		if !regexp.MustCompile(want).Match(metrics) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	d.stop()
}

// kill -9 the real station again and again while three lanes produce, with
// chips and printers as slow as real ones so that kills land mid-encoding
// and mid-print: no order lost, no card printed twice, card numbers
// distinct, every spoiled blank explained in the log.
func TestKill9ThreeLanes(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	args := []string{"--lane", "a=sim:apdu-delay=15ms,sim:print-time=500ms", "--lane", "b=sim:apdu-delay=15ms,sim:print-time=500ms",
		"--lane", "c=sim:apdu-delay=15ms,sim:print-time=500ms"}
	const n = 30
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("k9-%02d", i)
	}
	ops := opsToken(t, dir)
	d := startDaemon(t, dir, args...)
	d.submitAll(t, ids)
	var logs strings.Builder
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for round := range 8 {
		// Kill while the lanes work: a moment after some lane's card
		// reached the encoder (even rounds) or the printer (odd rounds).
		step := []string{"encoding", "printing"}[round%2]
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			there := false
			for _, l := range d.lanes(t, ops) {
				there = there || (l.Card != nil && l.Card.Step == step)
			}
			if there {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no card reached %s\n%s", round, step, d.stderr.String())
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		d.kill()
		logs.WriteString(d.stderr.String())
		t.Logf("round %d: killed with a card %s", round, step)
		d = startDaemon(t, dir, args...)
	}
	orders := d.waitFinal(ids, 5*time.Minute)
	d.stop()
	logs.WriteString(d.stderr.String())

	cards := map[string]string{}
	midPrint := 0
	for _, id := range ids {
		o := orders[id]
		if o.State != "produced" {
			t.Errorf("%s ended %s", id, o.State)
		}
		for _, e := range o.Events {
			// A lane taking back its card in printing: a kill caught it there.
			if e.State == "printing" && strings.HasPrefix(e.Note, "claimed on lane") {
				midPrint++
			}
		}
		if prev, dup := cards[o.CardNumber]; dup {
			t.Errorf("card number %s used by %s and %s", o.CardNumber, prev, id)
		}
		cards[o.CardNumber] = id
	}
	// Each printer's own record: every order's card printed once, on one
	// printer, and no job submitted twice.
	printed := map[string]int{}
	for _, name := range []string{"a", "b", "c"} {
		for job, times := range simJobs(t, dir, name) {
			if times != 1 {
				t.Errorf("lane %s printed job %s %d times", name, job, times)
			}
			printed[strings.SplitN(job, "_", 2)[0]]++
		}
	}
	for _, id := range ids {
		if printed[id] != 1 {
			t.Errorf("%s: %d cards printed, want 1", id, printed[id])
		}
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "station.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT order_id, coalesce(card_number, ''), reason FROM spoiled_blanks`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	spoiled := 0
	for rows.Next() {
		var id, number, why string
		if err := rows.Scan(&id, &number, &why); err != nil {
			t.Fatal(err)
		}
		spoiled++
		t.Logf("%s: card %s spoiled because %s", id, number, why)
		if why == "" || !strings.Contains(logs.String(), `msg="blank spoiled" order=`+id) {
			t.Errorf("spoiled blank %s of %s (%q) is not explained in the log", number, id, why)
		}
	}
	midEncode := strings.Count(logs.String(), "resuming the card in the encoder")
	t.Logf("%d orders, 8 kills: %d cards taken back mid-encoding, %d mid-print, %d blanks spoiled", n, midEncode, midPrint, spoiled)
	if midEncode == 0 || midPrint == 0 {
		t.Errorf("the kills never caught a card mid-encoding (%d) or mid-print (%d)", midEncode, midPrint)
	}
}

// One lane through the real pcscd (the emulator behind vpcd) and a real IPP
// printer (ippeveprinter), beside two simulated lanes: the pcscd lane's
// card passes QA's `station verify`. vpcd holds one card, so the lane is
// drained once it has taken its first.
func TestPCSCDLaneWithSimLanes(t *testing.T) {
	skipShort(t, "runs pcscd, ippeveprinter and the real binary")
	bin := stationBinary(t)
	env := pcscdtest.Start(t, []string{bin, "sim", "card", "--vpcd", pcscdtest.VPCDAddr})
	eve := ippetest.Start(t)
	dir := t.TempDir()
	ops := opsToken(t, dir)
	// A fixed address: the cards name it for their CRL, which verify fetches.
	d := startDaemonEnv(t, dir, env.Environ(), "--listen", freePort(t), "--lane", "p=pcsc:"+pcscdtest.ReaderName+",ipp:"+eve.URI,
		"--lane", "a=sim,sim:print-time=200ms", "--lane", "b=sim,sim:print-time=200ms")
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = fmt.Sprintf("mixed-%02d", i)
	}
	d.submitAll(t, ids)
	var inHand *lane.Card
	for deadline := time.Now().Add(2 * time.Minute); inHand == nil; time.Sleep(20 * time.Millisecond) {
		inHand = d.lanes(t, ops)["p"].Card
		if time.Now().After(deadline) {
			t.Fatalf("lane p never took a card\n%s", d.stderr.String())
		}
	}
	if code, b := d.ops(t, ops, http.MethodPost, "/v1/ops/lanes/p/drain", nil); code != http.StatusOK {
		t.Fatalf("drain p: %d %s", code, b)
	}
	orders := d.waitFinal(ids, 3*time.Minute)
	if p := d.lanes(t, ops)["p"]; p.State != lane.Off || p.CardsThisHour != 1 {
		t.Fatalf("lane p after its card = %+v, want off with one card", p)
	}
	// The station's CRL, for verify's revocation check once it is stopped.
	crl := filepath.Join(t.TempDir(), "ca.crl")
	resp, err := http.Get(d.url + "/pki/ca.crl")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || os.WriteFile(crl, b, 0o600) != nil {
		t.Fatalf("GET /pki/ca.crl: %s", resp.Status)
	}
	d.stop()
	byLane := map[string][]string{}
	for _, id := range ids {
		o := orders[id]
		if o.State != "produced" {
			t.Fatalf("%s ended %s: %+v\n%s", id, o.State, o.Events, d.stderr.String())
		}
		byLane[o.Lane] = append(byLane[o.Lane], id)
	}
	if len(byLane["p"]) != 1 || byLane["p"][0] != inHand.Order || len(byLane["a"]) == 0 || len(byLane["b"]) == 0 {
		t.Fatalf("orders by lane %v: want p's one card %s, the rest on a and b", byLane, inHand.Order)
	}
	if n := len(eve.Received(t)); n != 1 {
		t.Fatalf("the IPP printer received %d documents, want lane p's one card", n)
	}
	// With the card's PIN (the supplier opens it from the sealed letter)
	// and the CRL every check runs.
	cmd := exec.Command(bin, "verify", "--reader", "Virtual", "--json", "--data", dir, "--crl", crl, "--pin", sealedPIN(t, dir, inHand.Order))
	cmd.Env = env.Environ()
	out, err := cmd.Output()
	var rep struct {
		OK         bool
		Result     string
		CardNumber string `json:"card_number"`
		Order      string
		Checks     []struct{ Name, Status string }
	}
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("station verify: %v %v\n%s", err, jerr, out)
	}
	if p := orders[inHand.Order]; rep.Order != inHand.Order || rep.CardNumber != p.CardNumber {
		t.Fatalf("verify read card %s of %s, want lane p's %s of %s", rep.CardNumber, rep.Order, p.CardNumber, inHand.Order)
	}
	status := map[string]string{}
	for _, c := range rep.Checks {
		status[c.Name] = c.Status
		if c.Status == "fail" {
			t.Errorf("check %q failed on lane p's card\n%s", c.Name, out)
		}
	}
	for _, name := range []string{"chip UID", "CHUID (5FC102)", "Security Object (5FC106)", "revocation (CRL)", "management key: this station's per-card key",
		"key 9A (sign a challenge)", "Facial Image (5FC108)"} {
		if status[name] != "pass" {
			t.Errorf("check %q: %q, want pass\n%s", name, status[name], out)
		}
	}
	if err != nil || !rep.OK {
		t.Errorf("verify result %q (%v): every check must run and pass\n%s", rep.Result, err, out)
	}
}
