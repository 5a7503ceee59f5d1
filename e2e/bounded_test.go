package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowForgedBodiesCannotExhaustMemory is the adversarial review's
// memory attack against default ingest settings: 300 connections each
// trickling a forged 1 MB body (half announcing its length, half chunked),
// over and over, while genuine signed webhooks keep arriving. Every
// genuine webhook must be answered 2xx, the process's peak RSS must stay
// under 300 MB, and the forged requests recorded must stay few.
func TestSlowForgedBodiesCannotExhaustMemory(t *testing.T) {
	forEachStore(t, testSlowForgedBodies)
}

func testSlowForgedBodies(t *testing.T, st store) {
	const (
		attackers  = 300
		bodyBytes  = 1 << 20
		chunk      = 32 << 10
		chunkEvery = 100 * time.Millisecond
		attackFor  = 8 * time.Second
		rssLimitKB = 300 << 10
	)
	a := startApp(t)
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})
	p := startServe(t, cfg)

	ctx, cancel := context.WithTimeout(t.Context(), attackFor)
	defer cancel()
	var wg sync.WaitGroup
	var forgedSent, forgedRefused atomic.Int64
	for i := range attackers {
		chunked := i%2 == 1
		wg.Go(func() {
			for ctx.Err() == nil {
				status := slowForgedPost(ctx, p.addr, chunked, bodyBytes, chunk, chunkEvery)
				forgedSent.Add(1)
				if status >= 400 {
					forgedRefused.Add(1)
				}
			}
		})
	}

	// Genuine webhooks meanwhile, one at a time, each on a fresh connection.
	tw := newTwilio(t, p)
	var sids []string
	for i := 0; ctx.Err() == nil; i++ {
		sid, r, err := receive(t.Context(), tw, fmt.Sprintf("genuine %d", i))
		if err != nil || !acknowledged(r) {
			t.Fatalf("genuine webhook %d during the attack: %s, %v; want 200, accepted", i, describe(r), err)
		}
		sids = append(sids, sid)
	}
	wg.Wait()
	peak := peakRSSKB(t, p)
	t.Logf("%d genuine webhooks answered 2xx during the attack; %d forged requests sent, %d refused; peak RSS %d MB",
		len(sids), forgedSent.Load(), forgedRefused.Load(), peak>>10)
	if peak > rssLimitKB {
		t.Errorf("peak RSS %d MB, want under %d MB", peak>>10, rssLimitKB>>10)
	}
	if len(sids) == 0 {
		t.Fatal("no genuine webhook was sent during the attack")
	}
	a.waitForSIDs(t, 60*time.Second, sids)

	// Forged requests are recorded as metadata, and only a few per second
	// from one source: the attack cannot fill the disk either.
	rejected := apiRequests(t, p, "outcome=rejected&limit=500")
	limit := int(attackFor/time.Second)*1 + 10
	if len(rejected) > limit {
		t.Errorf("%d forged requests recorded from one source over %v, want at most %d", len(rejected), attackFor, limit)
	}
	for _, raw := range rejected {
		var r struct {
			ID         string `json:"id"`
			Body       string `json:"body"`
			BodyBase64 string `json:"body_base64"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		if n := len(r.Body) + len(r.BodyBase64)*3/4; n > 256 {
			t.Errorf("rejected request %s recorded with %d body bytes, want at most a 256-byte excerpt", r.ID, n)
		}
	}
}

// slowForgedPost sends one forged POST whose body of size bytes trickles
// in chunk bytes every interval, announced by Content-Length or chunked,
// and returns the status Switchboard answered (0 when it closed the
// connection first).
func slowForgedPost(ctx context.Context, addr string, chunked bool, size, chunk int, every time.Duration) int {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	head := "POST /sms HTTP/1.1\r\nHost: hooks.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"X-Twilio-Signature: forged\r\n"
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		head += "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	}
	statusCh := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			statusCh <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statusCh <- resp.StatusCode
	}()
	if _, err := io.WriteString(conn, head); err != nil {
		return 0
	}
	data := strings.Repeat("x", chunk)
	t := time.NewTicker(every)
	defer t.Stop()
	for sent := 0; sent < size; sent += chunk {
		piece := data
		if chunked {
			piece = fmt.Sprintf("%x\r\n%s\r\n", len(data), data)
		}
		if _, err := io.WriteString(conn, piece); err != nil {
			break // refused and closed: the answer is on its way
		}
		select {
		case status := <-statusCh:
			return status
		case <-t.C:
		case <-ctx.Done():
			return 0
		}
	}
	if chunked {
		_, _ = io.WriteString(conn, "0\r\n\r\n")
	}
	select {
	case status := <-statusCh:
		return status
	case <-ctx.Done():
		return 0
	}
}

// peakRSSKB reads the process's peak resident set size (VmHWM) in KiB.
func peakRSSKB(t *testing.T, p *proc) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc to read the process's memory from: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
