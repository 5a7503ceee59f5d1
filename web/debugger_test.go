package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/storetest"
	"github.com/switchboard-dev/switchboard/web"
)

func TestListDebuggerAlerts(t *testing.T) {
	t.Parallel()
	for _, redact := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "redacted"}[redact], func(t *testing.T) {
			t.Parallel()
			var opts []web.Option
			if redact {
				opts = append(opts, web.WithRedaction())
			}
			f := newFixtureWith(t, token, nil, opts...)
			const msg = "SM0123456789abcdef0123456789abcdef"
			at := time.Now().UTC().Truncate(time.Second)
			items := []*switchboard.Ingest{
				storetest.DebuggerItem("AC1", "NO00000000000000000000000000000001", msg, 30007, at.Add(-2*time.Minute)),
				storetest.DebuggerItem("AC1", "NO00000000000000000000000000000002", "SMffffffffffffffffffffffffffffffff", 11200, at.Add(-time.Minute)),
				storetest.DebuggerItem("AC1", "NO00000000000000000000000000000003", msg, 11200, at),
			}
			if err := f.store.Ingest(t.Context(), items); err != nil {
				t.Fatal(err)
			}
			list := func(query string) (int, web.Page[web.DebuggerAlertJSON], string) {
				resp, body := f.do(t, call{method: http.MethodGet, path: "/api/v1/debugger" + query, auth: bearer})
				var p web.Page[web.DebuggerAlertJSON]
				if resp.StatusCode == http.StatusOK {
					if err := json.Unmarshal(body, &p); err != nil {
						t.Fatalf("%s: %v", body, err)
					}
				}
				return resp.StatusCode, p, string(body)
			}
			sids := func(p web.Page[web.DebuggerAlertJSON]) string {
				var out []string
				for _, a := range p.Items {
					out = append(out, a.Sid[len(a.Sid)-1:])
				}
				return strings.Join(out, ",")
			}
			for _, tc := range []struct {
				query, want string
			}{
				{"", "3,2,1"},
				{"?resource_sid=" + msg, "3,1"},
				{"?code=11200", "3,2"},
				{"?resource_sid=" + msg + "&code=30007", "1"},
				{"?since=" + at.Add(-90*time.Second).Format(time.RFC3339), "3,2"},
			} {
				status, p, body := list(tc.query)
				if status != 200 || sids(p) != tc.want {
					t.Errorf("GET %s: %d %s, want %s", tc.query, status, body, tc.want)
				}
			}
			_, p, _ := list("?limit=1")
			if len(p.Items) != 1 || p.Next == "" {
				t.Fatalf("a page of 1: %+v", p)
			}
			if _, next, _ := list("?limit=5&cursor=" + p.Next); sids(next) != "2,1" {
				t.Errorf("next page %s, want 2,1", sids(next))
			}
			for _, bad := range []string{"?code=x", "?code=-3", "?since=yesterday"} {
				if status, _, body := list(bad); status != http.StatusBadRequest {
					t.Errorf("GET %s: %d %s, want 400", bad, status, body)
				}
			}
			_, p, body := list("?code=30007")
			a := p.Items[0]
			if a.EventID != items[0].Event.ID || a.ErrorCode != 30007 || a.Status != 502 || a.ResourceSID != msg {
				t.Errorf("alert %+v", a)
			}
			if leaked := strings.Contains(body, "15005550006"); leaked != !redact {
				t.Errorf("redact %v: the number in the payload's answer shown: %v (%s)", redact, leaked, body)
			}
			if resp, _ := f.do(t, call{method: http.MethodGet, path: "/api/v1/debugger"}); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("without a token: %d, want 401", resp.StatusCode)
			}
		})
	}
}
