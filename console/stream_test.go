package console_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
)

// streamRecorder is a ResponseWriter a test reads while the stream writes.
type streamRecorder struct {
	mu     sync.Mutex
	header http.Header
	code   int
	buf    bytes.Buffer
}

func newStreamRecorder() *streamRecorder { return &streamRecorder{header: http.Header{}} }

func (r *streamRecorder) Header() http.Header { return r.header }

func (r *streamRecorder) WriteHeader(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.code == 0 {
		r.code = code
	}
}

func (r *streamRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *streamRecorder) Flush() {}

func (r *streamRecorder) Code() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.code
}

// take returns what was written since the last take.
func (r *streamRecorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.buf.String()
	r.buf.Reset()
	return s
}

// sse is one server-sent event.
type sse struct{ event, id, data string }

func parseSSE(s string) []sse {
	var out []sse
	for block := range strings.SplitSeq(s, "\n\n") {
		var e sse
		var data []string
		for line := range strings.SplitSeq(block, "\n") {
			switch {
			case strings.HasPrefix(line, "event: "):
				e.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				e.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
		if e.event != "" {
			e.data = strings.Join(data, "\n")
			out = append(out, e)
		}
	}
	return out
}

// openStream starts a stream in the background; cancel ends it, and done
// is closed when it has.
func openStream(f *fixture, s session, target string, header ...string) (rec *streamRecorder, cancel func(), done chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", target, nil).WithContext(ctx)
	r.AddCookie(s.cookie)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec, done = newStreamRecorder(), make(chan struct{})
	go func() {
		defer close(done)
		f.c.ServeHTTP(rec, r)
	}()
	return rec, cancel, done
}

func TestStreamSendsNewRows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		seedEvent(f.store, 1, switchboard.StateDelivered)
		s := f.signIn()
		rec, cancel, done := openStream(f, s, "/console/events/stream?route=%2Fsms&after="+id(1))
		defer func() { cancel(); <-done }()
		synctest.Wait()
		if rec.Code() != http.StatusOK || rec.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q", rec.Code(), rec.header.Get("Content-Type"))
		}
		rec.take()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := parseSSE(rec.take()); len(got) != 0 {
			t.Fatalf("the row already shown was sent: %+v", got)
		}

		ev := seedEvent(f.store, 3, switchboard.StatePending)
		seedEvent(f.store, 4, switchboard.StatePending, func(e *switchboard.Event) { e.Route = "/voice" }) // not this list's
		time.Sleep(time.Second)
		synctest.Wait()
		got := parseSSE(rec.take())
		if len(got) != 1 || got[0].event != "row" || got[0].id != ev.ID {
			t.Fatalf("events %+v, want one row of %s", got, ev.ID)
		}
		row := first(parseHTML(t, "<table><tbody>"+got[0].data+"</tbody></table>"), func(n *html.Node) bool { return n.Data == "tr" })
		if row == nil || attr(row, "data-event-id") != ev.ID || !strings.Contains(text(row), "pending") {
			t.Errorf("row %q", got[0].data)
		}

		// An event committed after a newer one still comes, once.
		seedEvent(f.store, 2, switchboard.StatePending)
		time.Sleep(time.Second)
		synctest.Wait()
		got = parseSSE(rec.take())
		if len(got) != 1 || got[0].id != id(2) {
			t.Fatalf("late event: %+v", got)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := parseSSE(rec.take()); len(got) != 0 {
			t.Fatalf("rows sent twice: %+v", got)
		}
	})
}

func TestStreamResumesFromTheLastEventID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		for n := 1; n <= 3; n++ {
			seedEvent(f.store, n, switchboard.StateDelivered)
		}
		s := f.signIn()
		rec, cancel, done := openStream(f, s, "/console/events/stream?after="+id(1), "Last-Event-ID", id(2))
		defer func() { cancel(); <-done }()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := parseSSE(rec.take()); len(got) != 1 || got[0].id != id(3) {
			t.Fatalf("events %+v, want only %s", got, id(3))
		}
	})
}

func TestStreamsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, func(o *console.Options) { o.MaxStreams = 2; o.StreamFor = 10 * time.Minute })
		s := f.signIn()
		_, cancel1, done1 := openStream(f, s, "/console/events/stream")
		_, cancel2, done2 := openStream(f, s, "/console/events/stream")
		defer func() { cancel2(); <-done2 }()
		synctest.Wait()
		rec, cancel3, done3 := openStream(f, s, "/console/events/stream")
		<-done3
		cancel3()
		if rec.Code() != http.StatusServiceUnavailable || rec.header.Get("Retry-After") == "" {
			t.Fatalf("third stream: status %d, want 503 with Retry-After", rec.Code())
		}
		// A stream that ends frees its slot.
		cancel1()
		<-done1
		rec, cancel4, done4 := openStream(f, s, "/console/events/stream")
		synctest.Wait()
		if rec.Code() != http.StatusOK {
			t.Fatalf("after one ended: status %d", rec.Code())
		}
		// Each stream ends on its own after StreamFor.
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		select {
		case <-done4:
		default:
			t.Fatal("the stream outlived StreamFor")
		}
		cancel4()
	})
}

func TestStreamRefusesWhatItCannotFollow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.signIn()
	for _, target := range []string{
		"/console/events/stream?kind=bogus",
		"/console/events/stream?q=" + id(1),
		"/console/events/stream?after=" + url.QueryEscape("' OR 1=1"),
	} {
		if w := f.do("GET", target, nil, s.cookie); w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", target, w.Code)
		}
	}
}

func TestInspectorGoesLive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedEvent(f.store, 1, switchboard.StateDelivered)
	seedEvent(f.store, 2, switchboard.StateDelivered)
	s := f.signIn()
	for _, tc := range []struct {
		query string
		live  bool
	}{
		{"route=%2Fsms", true},
		{"until=2026-03-02T00:00:00Z", true}, // still ahead
		{"until=2026-03-01T00:00:00Z", false},
		{"cursor=" + id(2), false},
	} {
		doc := parseHTML(t, f.get(s, "/console/events?"+tc.query, http.StatusOK))
		rows := byID(doc, "events-rows")
		connect := attr(rows, "sse-connect")
		if !tc.live {
			if connect != "" {
				t.Errorf("%s: live at %s", tc.query, connect)
			}
			continue
		}
		u, err := url.Parse(connect)
		if err != nil || u.Path != "/console/events/stream" || u.Query().Get("after") != id(2) {
			t.Errorf("%s: sse-connect %q", tc.query, connect)
		}
		if attr(rows, "hx-ext") != "sse" || attr(rows, "sse-swap") != "row" || attr(rows, "hx-swap") != "afterbegin" {
			t.Errorf("%s: tbody %v", tc.query, rows.Attr)
		}
	}
}

func TestStreamEndsWithItsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		s := f.signIn()
		other := f.signIn()
		_, cancel, done := openStream(f, s, "/console/events/stream")
		defer cancel()
		synctest.Wait()
		// Signed out in another tab.
		f.post(s, "/console/logout", nil, http.StatusSeeOther)
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("the stream outlived its session")
		}
		// Another session's stream goes on.
		_, cancel2, done2 := openStream(f, other, "/console/events/stream")
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case <-done2:
			t.Fatal("a stream of a valid session ended")
		default:
		}
		cancel2()
		<-done2
	})
}

// A carriage return ends a line of server-sent events as a newline does:
// one in a stored value (an error's text) must not end the row's data and
// start lines of its own, such as an id that moves the browser's resume
// point.
func TestStreamRowsCannotForgeLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		s := f.signIn()
		rec, cancel, done := openStream(f, s, "/console/events/stream")
		defer func() { cancel(); <-done }()
		synctest.Wait()
		rec.take()
		seedEvent(f.store, 1, switchboard.StateDead, func(e *switchboard.Event) {
			e.LastError = "refused\rid: " + id(999) + "\rretry: 99999999\revent: row\rdata: forged"
		})
		time.Sleep(time.Second)
		synctest.Wait()
		out := rec.take()
		if strings.ContainsRune(out, '\r') {
			t.Errorf("a row's frame holds a carriage return: %q", out)
		}
		got := parseSSE(out)
		if len(got) != 1 || got[0].id != id(1) {
			t.Fatalf("events %+v, want one row of %s", got, id(1))
		}
	})
}
