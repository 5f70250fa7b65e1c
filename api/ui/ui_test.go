// The test is an external package: api imports ui to mount the explorer,
// and this test imports api, which an internal test could not.
package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rtgraph/rtgraph/api"
	"github.com/rtgraph/rtgraph/api/ui"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

func TestHandlerServesAssets(t *testing.T) {
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/ui/index.html", "text/html; charset=utf-8", `id="node-type"`},
		{"/ui/app.js", "text/javascript; charset=utf-8", `"use strict";`},
		{"/ui/style.css", "text/css; charset=utf-8", `.truncated`},
	} {
		resp, err := client.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, resp.StatusCode)
		}
		h := resp.Header
		if got := h.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := h.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tc.path, got)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", tc.path, got)
		}
		cspv := h.Get("Content-Security-Policy")
		if !strings.HasPrefix(cspv, "default-src 'self';") || strings.Contains(cspv, "unsafe-inline") || strings.Contains(cspv, "unsafe-eval") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, cspv)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}

	resp, err := client.Get(srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d Location %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/missing.js", "/ui/ui.go", "/ui/x/app.js", "/other"} {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp, err = client.Post(srv.URL+"/ui/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/ui/app.js", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		t.Errorf("HEAD /ui/app.js: %d length %d", resp.StatusCode, resp.ContentLength)
	}
}

// TestAssetsSelfContained checks what the CSP relies on: no inline script
// or style, no handler attributes, and nothing loaded from another origin.
func TestAssetsSelfContained(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	handlerAttr := regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	remote := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, err := os.ReadFile(name) // the files the package embeds
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if name == "index.html" {
			if inlineScript.MatchString(s) {
				t.Errorf("%s has an inline script", name)
			}
			if handlerAttr.MatchString(s) {
				t.Errorf("%s has an inline event handler attribute", name)
			}
			if strings.Contains(s, " style=") || strings.Contains(s, "<style") {
				t.Errorf("%s has an inline style", name)
			}
		}
		if m := remote.FindString(s); m != "" {
			t.Errorf("%s refers to another origin: %q", name, m)
		}
	}
}

// fixedFreshness reports a watermark 90 seconds old.
type fixedFreshness struct{ t time.Time }

func (f fixedFreshness) Watermark(context.Context) (time.Time, error) { return f.t, nil }

const (
	readKey = "ui-test-key-0123456789abcdef"
	// edgesTotal is hub's follows out-degree; the page reads 25 at a time.
	edgesTotal = 40
)

// newSite serves the API over a memstore holding: user hub following
// f00…f39, f00 following g1 and g2 (hub → f00 → g*, two hops) and f01
// following h00…h29; plus
// the explorer at /ui/. Counts are not enabled on it.
func newSite(t *testing.T) *httptest.Server {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	at := func(sec int) time.Time { return now.Add(-time.Hour).Add(time.Duration(sec) * time.Second) }
	u := func(id string) graph.NodeKey { return graph.NodeKey{Type: "user", ID: id} }
	muts := []graph.Mutation{
		{Op: graph.OpUpsertNode, Node: u("hub"), Props: graph.Props{"name": "Hub", "age": int64(41), "vip": true}, EventTime: at(1)},
		{Op: graph.OpUpsertNode, Node: u("f00"), Props: graph.Props{"name": "First"}, EventTime: at(2)},
	}
	for i := range edgesTotal {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge,
			Edge: graph.EdgeKey{Type: "follows", From: u("hub"), To: u(fmt.Sprintf("f%02d", i))}, Props: graph.Props{"weight": 0.5}, EventTime: at(10 + i)})
	}
	for _, id := range []string{"g1", "g2"} {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge,
			Edge: graph.EdgeKey{Type: "follows", From: u("f00"), To: u(id)}, EventTime: at(100)})
	}
	for i := range 30 {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge,
			Edge: graph.EdgeKey{Type: "follows", From: u("f01"), To: u(fmt.Sprintf("h%02d", i))}, EventTime: at(200 + i)})
	}
	schema := storetest.Schema()
	store := memstore.New(schema, memstore.Options{})
	if err := store.Apply(context.Background(), muts); err != nil {
		t.Fatalf("apply: %v", err)
	}
	cfg := api.DefaultConfig()
	cfg.CursorSecret = strings.Repeat("c", 32)
	cfg.Keys = []api.Key{{Name: "explorer", Key: readKey, Scopes: []string{api.ScopeGraphRead, api.ScopeCountsRead}}}
	cfg.RateLimit = api.RateLimit{}
	ready := lifecycle.NewReadiness()
	h, err := api.New(api.Options{
		Config:    cfg,
		Store:     store,
		Schema:    schema,
		Freshness: fixedFreshness{t: now.Add(-90 * time.Second)},
		Readiness: ready,
	})
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui", ui.Handler())
	mux.Handle("/ui/", ui.Handler())
	mux.Handle("/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium on PATH (apt-get install -y chromium); the browser test of the explorer cannot run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RTGRAPH_TEST_UI_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExplorerInBrowser drives the page in headless Chromium against a
// real API: find a node, its degree, two hops with truncation and load
// more, a problem answer, counts, and copy as curl and Python.
func TestExplorerInBrowser(t *testing.T) {
	chromium := findChromium(t)
	srv := newSite(t)
	shots := screenshotDir(t)

	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Script exceptions and CSP violations fail the test.
	var (
		mu       sync.Mutex
		failures []string
	)
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := fmt.Sprintf("exception: %s at %s:%d", d.Text, d.URL, d.LineNumber+1)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			failures = append(failures, msg)
		case *cdplog.EventEntryAdded:
			if strings.Contains(ev.Entry.Text, "Content Security Policy") {
				failures = append(failures, "csp: "+ev.Entry.Text)
			}
		}
	}); err != nil {
		t.Fatalf("start the browser: %v", err)
	}

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(buf, []byte("\x89PNG\r\n\x1a\n")) {
				return fmt.Errorf("screenshot %s is not a PNG", name)
			}
			return os.WriteFile(filepath.Join(shots, name), buf, 0o644)
		})
	}
	// waitJS waits until expr is true in the page.
	waitJS := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second))
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: "<no element>"}).textContent`, sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}

	// Without a key the schema is refused, and the page says so.
	run("open the page",
		chromedp.Navigate(srv.URL+"/ui/"),
		chromedp.WaitVisible(css("#error")),
	)
	if got := text("#error-status"); got != "401" {
		t.Errorf("error status without key: %q, want 401", got)
	}

	// With the key the node types come from GET /v1/schema.
	run("enter the key",
		chromedp.SendKeys(css("#api-key"), readKey),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.querySelector("#api-key").dispatchEvent(new Event("change"))`)(ctx, tg)
			return err
		}),
		waitJS(`document.querySelectorAll("#node-type option").length > 0`),
	)
	types, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#node-type option")].map(o => o.value).sort()`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(types, ","); got != "doc,entry,item,row,tag,user" {
		t.Errorf("node types: %s", got)
	}
	if n := count("#error:not([hidden])"); n != 0 {
		t.Errorf("error still shown with a key: %s %s", text("#error-status"), text("#error-detail"))
	}

	// An unknown node answers a visible 404 problem.
	run("find an unknown node",
		chromedp.SetValue(css("#node-type"), "user"),
		chromedp.SendKeys(css("#node-id"), "nobody"),
		chromedp.Click(css("#find")),
		waitJS(`!document.querySelector("#error").hidden`),
	)
	if got := text("#error-status"); got != "404" {
		t.Errorf("unknown node: status %q, want 404", got)
	}
	if got := text("#error-title"); got == "" {
		t.Error("unknown node: no problem title shown")
	}

	run("find hub",
		chromedp.SetValue(css("#node-id"), "hub"),
		chromedp.Click(css("#find")),
		waitJS(`document.querySelector('#degrees tr[data-edge-type="follows"][data-direction="out"] .count') !== null`),
	)
	if got := text(`#node-props tr[data-prop="name"] td:last-child`); got != "Hub" {
		t.Errorf("name property: %q, want Hub", got)
	}
	if got := text(`#node-props tr[data-prop="age"] td:last-child`); got != "41" {
		t.Errorf("age property: %q, want 41", got)
	}
	if got := text("#node-title"); got != "user:hub" {
		t.Errorf("title: %q", got)
	}
	if got := text("#node-event-time"); !strings.HasSuffix(got, "Z") {
		t.Errorf("event_time: %q", got)
	}
	if got := text("#node-watermark"); !regexp.MustCompile(`^\S+Z \((8\d|9\d|1[01]\d)s old\)$`).MatchString(got) {
		t.Errorf("watermark freshness: %q, want the time and about 90s old", got)
	}
	if got := text(`#degrees tr[data-edge-type="follows"][data-direction="out"] .count`); got != "40" {
		t.Errorf("follows out degree: %q, want 40", got)
	}
	if got := text(`#degrees tr[data-edge-type="follows"][data-direction="in"] .count`); got != "0" {
		t.Errorf("follows in degree: %q, want 0", got)
	}
	run("screenshot node", shot("01-node.png"))

	// A limit over the API's cap is refused with the field named.
	run("expand over the cap",
		chromedp.SetValue(css("#expand-edge-type"), "follows"),
		chromedp.SetValue(css("#expand-direction"), "out"),
		chromedp.SetValue(css("#expand-limit"), "1000000"),
		chromedp.Click(css("#expand")),
		waitJS(`!document.querySelector("#error").hidden`),
	)
	if got := text("#error-field"); got != "limit" {
		t.Errorf("over-cap limit: field %q, want limit (status %s, detail %s)", got, text("#error-status"), text("#error-detail"))
	}

	// Hop 1: 25 of 40, truncated.
	hub := `#tree > li.tree-node[data-id="hub"] > .expansion[data-key="follows out"]`
	run("expand hop 1",
		chromedp.SetValue(css("#expand-limit"), "25"),
		chromedp.Click(css("#expand")),
		waitJS(fmt.Sprintf(`document.querySelector(%q) !== null`, hub+" .truncated")),
	)
	if got := text(hub + " .truncated"); got != "showing 25 of 40 (truncated)" {
		t.Errorf("truncation marker: %q", got)
	}
	if n := count(hub + " > ul > li"); n != 25 {
		t.Errorf("hop 1 shows %d neighbours, want 25", n)
	}
	if got := text(hub + ` > ul > li[data-id="f24"] .node-label`); got != "user:f24" {
		t.Errorf("25th neighbour: %q, want user:f24 (key order)", got)
	}
	run("screenshot hop 1", shot("02-hop1.png"))

	// Hop 2, from f00.
	f00 := hub + ` > ul > li[data-id="f00"]`
	// Its row defaults to the edge type and direction it was reached by.
	if v, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).value`, f00+" > .node-line .hop-edge"))); err != nil || v != "follows out" {
		t.Errorf("f00's edge choice: %q (%v), want follows out", v, err)
	}
	run("expand hop 2",
		chromedp.Click(css(f00+" > .node-line .hop-expand")),
		waitJS(fmt.Sprintf(`document.querySelector(%q) !== null`, f00+" > .expansion .complete")),
	)
	hop2, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent)`, f00+" > .expansion > ul > li > .node-line > .node-label")))
	if err != nil {
		t.Fatalf("read hop 2: %v", err)
	}
	if strings.Join(hop2, ",") != "user:g1,user:g2" {
		t.Errorf("hop 2 neighbours: %v, want user:g1,user:g2", hop2)
	}
	if got := text(f00 + " > .expansion .complete"); got != "showing all 2" {
		t.Errorf("hop 2 status: %q", got)
	}
	if n := count(f00 + " .truncated"); n != 0 {
		t.Errorf("hop 2 has %d truncation markers, want none", n)
	}
	// Hop 2 from f01 is truncated too; its total comes from the degree
	// route, since f01 was never looked up.
	f01 := hub + ` > ul > li[data-id="f01"]`
	run("expand f01",
		chromedp.Click(css(f01+" > .node-line .hop-expand")),
		waitJS(fmt.Sprintf(`document.querySelector(%q) !== null`, f01+" > .expansion .truncated")),
	)
	if got := text(f01 + " > .expansion .truncated"); got != "showing 25 of 30 (truncated)" {
		t.Errorf("f01 truncation marker: %q", got)
	}
	if n := count(f01 + " > .expansion > ul > li"); n != 25 {
		t.Errorf("f01 shows %d neighbours, want 25", n)
	}
	run("screenshot hop 2", shot("03-hop2.png"))

	// Copy the last request (f00's hop 2 again) as curl, then make that request.
	run("copy as curl",
		chromedp.Click(css(f00+" > .node-line .hop-expand")),
		waitJS(fmt.Sprintf(`document.querySelectorAll(%q).length === 2`, f00+" > .expansion > ul > li")),
		chromedp.Click(css("#copy-curl")),
		waitJS(`document.querySelector("#snippet").textContent.startsWith("curl ")`),
	)
	snippet := text("#snippet")
	wantURL := srv.URL + "/v1/nodes/user/f00/edges?edge_type=follows&direction=out&limit=25&order=key&since=1970-01-01T00%3A00%3A00Z"
	if !strings.Contains(snippet, "curl -sS '"+wantURL+"'") || !strings.Contains(snippet, `-H "Authorization: Bearer $RTGRAPH_API_KEY"`) {
		t.Errorf("curl snippet:\n%s\nwant the URL %s and the Authorization header", snippet, wantURL)
	}
	if strings.Contains(snippet, readKey) {
		t.Error("curl snippet shows the API key")
	}
	req, _ := http.NewRequest(http.MethodGet, wantURL, nil)
	req.Header.Set("Authorization", "Bearer "+readKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"id":"g2"`) {
		t.Errorf("the curl request answers %d %s", resp.StatusCode, body)
	}
	run("copy as Python",
		chromedp.Click(css("#copy-python")),
		waitJS(`document.querySelector("#snippet").textContent.startsWith("from rtgraph import Client")`),
	)
	py := text("#snippet")
	for _, want := range []string{
		fmt.Sprintf("c = Client(%q)", srv.URL),
		`c.edges_page("user", "f00", "follows", direction="out", limit=25, order="key", since="1970-01-01T00:00:00Z")`,
	} {
		if !strings.Contains(py, want) {
			t.Errorf("Python snippet:\n%s\nlacks %s", py, want)
		}
	}

	// Load more: the other 15, and the marker goes.
	run("load more",
		chromedp.Click(css(hub+" > .page-status .load-more")),
		waitJS(fmt.Sprintf(`document.querySelector(%q) !== null`, hub+" > .page-status .complete")),
	)
	if n := count(hub + " > ul > li"); n != edgesTotal {
		t.Errorf("after load more: %d neighbours, want %d", n, edgesTotal)
	}
	if got := text(hub + " > .page-status .complete"); got != "showing all 40" {
		t.Errorf("after load more: %q", got)
	}
	if n := count(hub + " > .page-status .truncated"); n != 0 {
		t.Errorf("after load more: %d truncation markers remain", n)
	}

	// Counts are not enabled on this server: the panel shows the problem.
	run("counts",
		chromedp.SendKeys(css("#counts-user"), "user:hub"),
		chromedp.SendKeys(css("#counts-edge-type"), "viewed"),
		chromedp.SendKeys(css("#counts-targets"), "item:i1, item:i2"),
		chromedp.SetValue(css("#counts-windows"), "1m,1h,1d"),
		chromedp.Click(css("#counts-submit")),
		waitJS(`document.querySelector("#counts-result .problem-title") !== null`),
	)
	if got := text("#counts-result .problem-title"); got != "404 Not found" {
		t.Errorf("counts problem title: %q", got)
	}
	if got := text("#counts-result .problem-detail"); !strings.Contains(got, "counts are not enabled") {
		t.Errorf("counts problem detail: %q", got)
	}
	if got := text("#last-request"); got != "GET /v1/counts/user/hub?edge_type=viewed&target=item%3Ai1&target=item%3Ai2&windows=1m%2C1h%2C1d" {
		t.Errorf("last request: %q", got)
	}
	run("screenshot counts", chromedp.ScrollIntoView(css("#counts-panel")), shot("04-counts.png"))

	mu.Lock()
	defer mu.Unlock()
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("screenshots in %s", shots)
}
