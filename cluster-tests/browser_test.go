package clustertests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-rod/rod"
	"github.com/go-rod/rod/lib/launcher"
	"github.com/go-rod/rod/lib/proto"
)

// chromiumPath is Debian's chromium; make test installs it when missing.
const chromiumPath = "/usr/bin/chromium"

// screenDir is where the console tests write their screenshots: one PNG a
// page, desktop and phone width (LINTEL_SCREENSHOTS changes it).
func screenDir(t testing.TB) string {
	d := os.Getenv("LINTEL_SCREENSHOTS")
	if d == "" {
		d = filepath.Join("..", "test-output", "screens")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// browser is one headless Chromium with its own profile (its own cookies)
// and one page.
type browser struct {
	t    testing.TB
	page *rod.Page
}

// newBrowser starts a real Chromium. Without it the test cannot run: it
// fails, so a machine without the browser does not pass quietly.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("the console tests need Debian's chromium at %s (apt-get install --no-install-recommends chromium)", chromiumPath)
	}
	l := launcher.New().Bin(chromiumPath).Headless(true).NoSandbox(true).Leakless(false).
		UserDataDir(t.TempDir()).
		Set("disable-gpu").Set("disable-quic").Set("no-first-run").Set("disable-background-networking").
		Set("disable-component-update").Set("disable-sync").Set("disable-dev-shm-usage")
	u, err := l.Launch()
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	br := rod.New().ControlURL(u)
	if err := br.Connect(); err != nil {
		l.Kill()
		t.Fatalf("connect to chromium: %v", err)
	}
	page, err := br.Page(proto.TargetCreateTarget{URL: "about:blank"})
	if err != nil {
		t.Fatalf("open a page: %v", err)
	}
	t.Cleanup(func() { br.Close(); l.Kill() })
	b := &browser{t: t, page: page}
	b.size(1280, 900, false)
	return b
}

func (b *browser) size(w, h int, mobile bool) {
	b.page.SetViewport(&proto.EmulationSetDeviceMetricsOverride{Width: w, Height: h, DeviceScaleFactor: 1, Mobile: mobile})
}

// do runs fn against the page with a timeout; a failure fails the test with
// a screenshot of where it stood.
func (b *browser) do(what string, fn func(p *rod.Page) error) {
	b.t.Helper()
	if err := fn(b.page.Timeout(10 * time.Second)); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// open loads a URL and waits for the page.
func (b *browser) open(url string) {
	b.t.Helper()
	b.do("open "+url, func(p *rod.Page) error {
		if err := p.Navigate(url); err != nil {
			return err
		}
		return p.WaitLoad()
	})
}

// click clicks the element and waits for the page that follows.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, func(p *rod.Page) error {
		el, err := p.Element(sel)
		if err != nil {
			return err
		}
		wait := p.WaitNavigation(proto.PageLifecycleEventNameLoad)
		if err := el.Click(proto.InputMouseButtonLeft, 1); err != nil {
			return err
		}
		wait()
		return nil
	})
}

// tick toggles a checkbox (no navigation).
func (b *browser) tick(sel string) {
	b.t.Helper()
	b.do("tick "+sel, func(p *rod.Page) error {
		el, err := p.Element(sel)
		if err != nil {
			return err
		}
		return el.Click(proto.InputMouseButtonLeft, 1)
	})
}

// fill types into an input.
func (b *browser) fill(sel, text string) {
	b.t.Helper()
	b.do("fill "+sel, func(p *rod.Page) error {
		el, err := p.Element(sel)
		if err != nil {
			return err
		}
		return el.Input(text)
	})
}

// upload sets a file input to a file.
func (b *browser) upload(sel, file string) {
	b.t.Helper()
	b.do("upload to "+sel, func(p *rod.Page) error {
		el, err := p.Element(sel)
		if err != nil {
			return err
		}
		return el.SetFiles([]string{file})
	})
}

// href is the href attribute of the first element matching sel.
func (b *browser) href(sel string) string {
	b.t.Helper()
	var s string
	b.do("href of "+sel, func(p *rod.Page) error {
		el, err := p.Element(sel)
		if err != nil {
			return err
		}
		v, err := el.Attribute("href")
		if v != nil {
			s = *v
		}
		return err
	})
	return s
}

// get fetches a URL with the browser's cookies, as following a download
// link does.
func (b *browser) get(url string) (int, []byte) {
	b.t.Helper()
	cookies, err := b.page.Cookies([]string{url})
	if err != nil {
		b.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// has reports whether an element matching sel is on the page now.
func (b *browser) has(sel string) bool {
	ok, _, err := b.page.Has(sel)
	return err == nil && ok
}

// text is the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.do("read "+sel, func(p *rod.Page) error {
		el, err := p.Element(sel)
		if err != nil {
			return err
		}
		s, err = el.Text()
		return err
	})
	return strings.TrimSpace(s)
}

// waitText waits until the element's text contains want, without reloading
// the page: what changes must arrive over the live connection.
func (b *browser) waitText(sel, want string, timeout time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		if ok, el, err := b.page.Has(sel); err == nil && ok {
			if s, err := el.Text(); err == nil {
				last = s
				if strings.Contains(s, want) {
					return time.Since(start)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.shot("waited-for-" + want)
	b.t.Fatalf("%s: want %q, still %q after %s", sel, want, last, timeout)
	return 0
}

// shot writes a full-page screenshot at desktop width and at 390 px.
func (b *browser) shot(name string) {
	b.t.Helper()
	dir := screenDir(b.t)
	for _, size := range []struct {
		suffix string
		w, h   int
		mobile bool
	}{{"", 1280, 900, false}, {"-phone", 390, 844, true}} {
		b.size(size.w, size.h, size.mobile)
		png, err := b.page.Timeout(10*time.Second).Screenshot(true, &proto.PageCaptureScreenshot{Format: proto.PageCaptureScreenshotFormatPng})
		if err != nil {
			b.t.Logf("screenshot %s: %v", name, err)
			continue
		}
		os.WriteFile(filepath.Join(dir, name+size.suffix+".png"), png, 0o644)
	}
	b.size(1280, 900, false)
}

// overflowAt reports whether the page scrolls sideways at a width.
func (b *browser) overflowAt(width int) (bool, error) {
	b.size(width, 844, true)
	defer b.size(1280, 900, false)
	time.Sleep(100 * time.Millisecond)
	v, err := b.page.Eval(`() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1`)
	if err != nil {
		return false, err
	}
	return v.Value.Bool(), nil
}

// login logs in through the form.
func (b *browser) login(base, email, password string) {
	b.t.Helper()
	b.open(base + "/login")
	b.fill("#email", email)
	b.fill("#password", password)
	b.click("button[type=submit]")
	if !b.has("#operator") {
		b.shot("failed-login")
		b.t.Fatalf("login as %s did not reach the console", email)
	}
}

// waitLive waits until the page's websocket is open (the node counts its
// live connections), so a change made next is not missed.
func (b *browser) waitLive(c *cluster, n *node) {
	b.t.Helper()
	eventually(b.t, 10*time.Second, "live connection on "+n.id, func() error {
		v, err := c.metric(n, "lintel_console_live_connections")
		if err != nil {
			return err
		}
		if v < 1 {
			return fmt.Errorf("%v live connections", v)
		}
		return nil
	})
}
