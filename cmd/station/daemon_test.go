package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"id06/station/stationtest"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These helpers run the real station binary, as an operator would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func stationBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "station-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "station")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// skipShort skips, under -short, a test that runs real processes; why
// says which.
func skipShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip(why)
	}
}

// sharedDir finds ../shared (the team's shared folder) above the package.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		for _, c := range []string{filepath.Join(d, "shared"), filepath.Join(filepath.Dir(d), "shared")} {
			if fi, err := os.Stat(filepath.Join(c, "testdata", "photos")); err == nil && fi.IsDir() {
				return c
			}
		}
	}
	t.Fatal("shared/testdata/photos not found above " + dir)
	return ""
}

// passPhotos returns the portraits expected.tsv says must pass.
func passPhotos(t testing.TB) [][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(sharedDir(t), "testdata", "photos", "dev", "pass_london_*.jpg"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no pass photos: %v", err)
	}
	sort.Strings(paths)
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// orderJSON is the example order under a new id and photo.
func orderJSON(t testing.TB, id string, photo []byte, express bool) []byte {
	t.Helper()
	b, err := os.ReadFile("../../examples/order.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["id"], doc["photo"], doc["express"] = id, photo, express
	// Approved a minute ago: the example's own date ages out of the rules.
	doc["approvals"] = []map[string]any{{"kind": "holder", "method": "bankid", "at": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)}}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type daemon struct {
	t      testing.TB
	cmd    *exec.Cmd
	url    string
	dir    string
	token  string
	stderr *stationtest.LogBuffer
	done   chan error
}

// startDaemon runs `station serve` on 127.0.0.1:0 over the data dir.
func startDaemon(t testing.TB, dir string, args ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, dir, nil, args...)
}

// startDaemonEnv is startDaemon with a process environment (nil = inherit).
func startDaemonEnv(t testing.TB, dir string, env []string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(stationBinary(t), append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dir}, args...)...)
	cmd.Env = env
	return startCmd(t, cmd, dir)
}

// startCmd starts a prepared `station serve` command over the data dir.
func startCmd(t testing.TB, cmd *exec.Cmd, dir string) *daemon {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, dir: dir, stderr: &stationtest.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "station listening on "); ok {
				addr <- u
			}
		}
		d.done <- cmd.Wait()
	}()
	select {
	case d.url = <-addr:
	case err := <-d.done:
		t.Fatalf("station exited at start: %v\n%s", err, d.stderr.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("station did not start:\n%s", d.stderr.String())
	}
	tok, err := os.ReadFile(filepath.Join(dir, "dev-token"))
	if err != nil {
		t.Fatal(err)
	}
	d.token = strings.TrimSpace(string(tok))
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *daemon) kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Fatalf("station exited with %v\n%s", err, d.stderr.String())
		}
	case <-time.After(60 * time.Second):
		d.t.Fatal("station did not stop within a minute of SIGTERM")
	}
}

func (d *daemon) do(method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, d.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// submit posts one order and fails the test unless the station takes it.
func (d *daemon) submit(id string, photo []byte) {
	d.t.Helper()
	code, b, err := d.do(http.MethodPost, "/v1/orders", orderJSON(d.t, id, photo, false))
	if err != nil || code != http.StatusCreated {
		d.t.Fatalf("submit %s: %d %s %v", id, code, b, err)
	}
}

// produced waits for one order to end and fails the test unless it ended
// produced.
func (d *daemon) produced(id string, timeout time.Duration) *orderState {
	d.t.Helper()
	o := d.waitFinal([]string{id}, timeout)[id]
	if o.State != "produced" {
		d.t.Fatalf("%s ended %s: %+v\n%s", id, o.State, o.Events, d.stderr.String())
	}
	return o
}

type orderState struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	CardNumber string `json:"card_number"`
	ChipUID    string `json:"chip_uid"`
	ValidUntil string `json:"valid_until"`
	Lane       string `json:"lane"`
	Events     []struct {
		State string `json:"state"`
		Note  string `json:"note"`
	} `json:"events"`
}

func (d *daemon) order(id string) (*orderState, error) {
	code, b, err := d.do(http.MethodGet, "/v1/orders/"+id, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", id, code, b)
	}
	var o orderState
	return &o, json.Unmarshal(b, &o)
}

// waitFinal polls the order list until every order has reached a final
// state, then reads each one with its events.
func (d *daemon) waitFinal(ids []string, timeout time.Duration) map[string]*orderState {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, b, err := d.do(http.MethodGet, "/v1/orders?limit=500", nil)
		if err != nil || code != http.StatusOK {
			d.t.Fatalf("list orders: %d %s %v", code, b, err)
		}
		var list struct{ Orders []orderState }
		if err := json.Unmarshal(b, &list); err != nil {
			d.t.Fatal(err)
		}
		states := map[string]string{}
		for _, o := range list.Orders {
			states[o.ID] = o.State
		}
		pending := 0
		for _, id := range ids {
			switch states[id] {
			case "produced", "failed", "needs_fix", "cancelled":
			default:
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%d orders not finished after %v: %v\n%s", pending, timeout, states, d.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := map[string]*orderState{}
	for _, id := range ids {
		o, err := d.order(id)
		if err != nil {
			d.t.Fatal(err)
		}
		out[id] = o
	}
	return out
}

// producedOnce checks that every order was produced, once, on a card number
// no other order has, and logs each chip resumed after a crash.
func producedOnce(t *testing.T, ids []string, orders map[string]*orderState) {
	t.Helper()
	cards := map[string]string{}
	for _, id := range ids {
		o := orders[id]
		if o.State != "produced" {
			t.Errorf("%s ended %s: %+v", id, o.State, o.Events)
		}
		if prev, dup := cards[o.CardNumber]; dup {
			t.Errorf("card number %s used by %s and %s", o.CardNumber, prev, id)
		}
		cards[o.CardNumber] = id
		produced := 0
		for _, e := range o.Events {
			if e.State == "produced" {
				produced++
			}
			if strings.HasPrefix(e.Note, "resuming chip") {
				t.Logf("%s: %s", id, e.Note)
			}
		}
		if produced != 1 {
			t.Errorf("%s has %d produced events", id, produced)
		}
	}
}
