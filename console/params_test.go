package console

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseSearch(t *testing.T) {
	t.Parallel()
	sm := "SM" + strings.Repeat("ab", 16)
	for _, tc := range []struct {
		q    string
		want search
		bad  bool
	}{
		{"", search{}, false},
		{"  " + sm + " ", search{SID: sm}, false},
		{"CA" + strings.Repeat("0f", 16), search{SID: "CA" + strings.Repeat("0f", 16)}, false},
		{"MM" + strings.Repeat("0F", 16), search{SID: "MM" + strings.Repeat("0F", 16)}, false},
		{"+15551234567", search{Number: "+15551234567"}, false},
		{"+44 20 7946 0958", search{Number: "+442079460958"}, false},
		{"(555) 123-4567", search{Number: "+5551234567"}, false},
		{"whatsapp:+15551234567", search{Number: "whatsapp:+15551234567"}, false},
		{"0190a000-0000-7000-8000-000000000001", search{EventID: "0190a000-0000-7000-8000-000000000001"}, false},
		{"0190A000-0000-7000-8000-000000000001", search{EventID: "0190a000-0000-7000-8000-000000000001"}, false},
		{"{0190a000-0000-7000-8000-000000000001}", search{}, true},
		{"SM123", search{}, true},
		{"+0123456789", search{}, true},
		{"12", search{}, true},
		{"hello", search{}, true},
		{"' OR 1=1 --", search{}, true},
	} {
		got, err := parseSearch(tc.q)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseSearch(%q) = %+v, %v; want %+v, bad %v", tc.q, got, err, tc.want, tc.bad)
		}
	}
}

func TestPageSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		bad  bool
	}{
		{"", defaultPageSize, false}, {"1", 1, false}, {"200", 200, false}, {"201", 200, false},
		{"4294967296", 200, false}, {"999999999999999999999999", 200, false},
		{"0", 0, true}, {"-1", 0, true}, {"1e3", 0, true}, {"ten", 0, true}, {" 5", 0, true},
	} {
		got, err := pageSize(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("pageSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestCheckParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q   string
		bad bool
	}{
		{"route=%2Fsms&q=%2B1555", false},
		{"q=caf%C3%A9", false},
		{"q=%00", true},
		{"q=a%0Ab", true},
		{"q=%7F", true},
		{"q=%C3", true},
		{"%00=1", true},
		{"q=" + strings.Repeat("a", maxParamBytes+1), true},
		{"q=" + strings.Repeat("a", maxParamBytes), false},
		{strings.Repeat("a=1&", maxParams+1), true},
	} {
		v, err := url.ParseQuery(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkParams(v); (err != nil) != tc.bad {
			t.Errorf("%.40q: %v, want bad %v", tc.q, err, tc.bad)
		}
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/events?q=x":   "/console/events?q=x",
		"/console/":             "/console/",
		"/console/login?next=x": "/console/events",
		"//evil.example":        "/console/events",
		"/console/%0d%0aX: y":   "/console/%0d%0aX: y",
		"/console/\r\nX: y":     "/console/events",
		"javascript:alert(1)":   "/console/events",
		"http:/console/":        "/console/events",
		// Dot segments climb out of the console once the redirect cleans
		// the path, encoded or not.
		"/console/..//evil.example": "/console/events",
		"/console/%2e%2e/admin":     "/console/events",
		"/console/events/./x":       "/console/events",
		"/console/./login":          "/console/events",
		"/console/events?q=..":      "/console/events?q=..",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
