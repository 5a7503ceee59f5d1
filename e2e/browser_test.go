package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	ctx   context.Context
	shots string // folder the screenshots go to
}

// browserPaths are the names Chromium goes by.
var browserPaths = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// startBrowser starts a headless Chromium for the test, closed when it
// ends. Without one the test is skipped, unless
// SWITCHBOARD_TEST_REQUIRE_BROWSER is set (CI sets it), where it fails.
func startBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	var path string
	for _, name := range browserPaths {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("SWITCHBOARD_TEST_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium found (apt-get install chromium)")
		}
		t.Skip("no Chromium found (apt-get install chromium); set SWITCHBOARD_TEST_REQUIRE_BROWSER to fail instead")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // as root in a container there is no user namespace to sandbox in
		chromedp.WindowSize(1360, 900),
		chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{ctx: ctx, shots: shots}
}

// run runs steps with a deadline, failing the test with what was being
// done.
func (b *browser) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, b, what, chromedp.Steps(steps...))
}

// get runs one action with a deadline and returns its value, failing the
// test with what was being done.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		at, _ := chromedp.Run(b.ctx, chromedp.Location())
		html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s\n%s", what, err, at, truncate(html, 4000))
	}
	return v
}

// void makes an action whose value does not matter a step.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// screenshot writes the whole page as name.png in the folder (quality
// 100 is what makes it a PNG rather than a JPEG).
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	png := get(t, b, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// screenshotDir is where a test's screenshots go:
// $SWITCHBOARD_TEST_SCREENSHOTS/<sub> when set, else a folder under the
// system's temporary directory (kept after the test, so they can be looked
// at).
func screenshotDir(t *testing.T, sub string) string {
	base := os.Getenv("SWITCHBOARD_TEST_SCREENSHOTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "switchboard-console-screenshots")
	}
	dir := filepath.Join(base, sub)
	t.Logf("screenshots: %s", dir)
	return dir
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// visibleText is the page's text as a reader sees it.
func (b *browser) visibleText(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(get(t, b, "read the page", chromedp.Text(chromedp.CSS("body"))))
}
