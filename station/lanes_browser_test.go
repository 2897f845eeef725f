package station

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"id06/api"
	"id06/lane"
	"id06/order"
	"id06/queue"
	"id06/station/stationtest"
)

// The lane panel on the dashboard follows the lanes live: lane b runs out
// of cards and shows paused with the reason, and another operator's resume
// (a refill) shows, both without a reload; the operator pauses and resumes
// lane a from the panel, audited, and the page follows b's work meanwhile.
func TestBrowserLanePanel(t *testing.T) {
	chromium := needBrowser(t)
	s, addr, supplierToken, logs := runStationLogged(t, func(c *Config) {
		c.Lanes = []lane.Config{{Name: "a", Reader: "sim", Printer: "sim:print-time=300ms"}, {Name: "b", Reader: "sim", Printer: "sim:cards=1"}}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("station log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTimeout()
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	laneState := func(name, state string) chromedp.Action[chromedp.Void] {
		return until(`(document.querySelector('#lane-` + name + `') || {dataset: {}}).dataset.state === '` + state + `'`)
	}
	do("log in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), "eva"),
		chromedp.SendKeys(chromedp.ID("password"), stationtest.Password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("lanes")),
		until(`document.documentElement.dataset.live === 'connected'`),
		laneState("a", "idle"), laneState("b", "idle"))
	// Everything from here happens on this one page: a reload would lose it.
	do("mark the page", chromedp.Evaluate[chromedp.Void](`window.samePage = true`))

	for _, id := range []string{"panel-1", "panel-2", "panel-3", "panel-4"} {
		submit(t, base, supplierToken, example(t, id, "pass_london_001_03.jpg", false))
	}
	do("lane b pauses out of cards, live", laneState("b", "paused"),
		until(`document.querySelector('#lane-b .reason').textContent.includes('Out of cards')`),
		until(`document.querySelector('#lane-b .blanks').textContent.trim() === '0'`))
	for _, id := range []string{"panel-1", "panel-2", "panel-3", "panel-4"} {
		waitState(t, s, id, order.Produced)
	}
	// Another operator resumes lane b through the operator API: the panel
	// follows, still without a reload.
	opsToken, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.AddToken(context.Background(), "floor", opsToken, []string{"operator"}); err != nil {
		t.Fatal(err)
	}
	if status, out, _ := stationtest.Call(t, http.MethodPost, base+"/v1/ops/lanes/b/resume", opsToken, nil); status != http.StatusOK || out["state"] != "idle" {
		t.Fatalf("resume b: %d %v", status, out)
	}
	do("lane b resumed, live", laneState("b", "idle"),
		until(`document.querySelector('#lane-b .blanks').textContent.trim() === '1'`))
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.samePage === true`))
	if err != nil || !same {
		t.Fatalf("the page was reloaded, not updated live: %v", err)
	}

	// The operator pauses lane a from the panel: an order now goes to b.
	// A form post and its redirect: wait for the new page's element.
	do("lane a paused from the panel", chromedp.Click(chromedp.CSS("#lane-a .lane-pause")),
		chromedp.WaitVisible(chromedp.CSS(`#lane-a[data-state="paused"]`)),
		until(`document.querySelector('#lane-a .reason').textContent.includes('Paused by eva')`))
	submit(t, base, supplierToken, example(t, "panel-5", "pass_london_001_03.jpg", false))
	if o := waitState(t, s, "panel-5", order.Produced); o.Lane != "b" {
		t.Fatalf("panel-5 made on lane %q while a was paused", o.Lane)
	}
	do("lane b's count follows, live", until(`document.querySelector('#lane-b .cards-hour').textContent.trim() === '2'`))
	do("lane a resumed from the panel", chromedp.Click(chromedp.CSS("#lane-a .lane-resume")),
		chromedp.WaitVisible(chromedp.CSS(`#lane-a[data-state="idle"]`)))
	trail, err := s.Store.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range trail {
		got = append(got, e.Actor+" "+e.Action+" "+e.Detail)
	}
	for _, entry := range []string{"api:floor lane_resume b", "operator:eva lane_pause a Paused by eva", "operator:eva lane_resume a"} {
		if !slices.Contains(got, entry) {
			t.Errorf("%q not audited: %q", entry, got)
		}
	}
	if got := s.Pipeline.Lanes(context.Background()); got[0].State != lane.Idle || !strings.Contains(got[1].LastFault, "Out of cards") {
		t.Fatalf("lanes after the test: %+v", got)
	}
}
