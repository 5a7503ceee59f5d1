package switchboard

import (
	"net/http"
	"strings"
	"testing"
)

func TestRequestMetadataIsBounded(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("X-Twilio-Signature", strings.Repeat("s", 1000))
	h.Set("X-Huge", strings.Repeat("h", 60000))
	r := Request{URL: "https://h.example/sms?" + strings.Repeat("q", 5000), Header: h, Body: []byte(strings.Repeat("b", 5000)), Reason: "why"}
	m := r.Metadata()
	if len(m.Body) != MetadataBodyBytes || len(m.URL) != MetadataURLBytes || !strings.Contains(m.Reason, "5000 bytes") {
		t.Errorf("body %d, URL %d, reason %q", len(m.Body), len(m.URL), m.Reason)
	}
	if m.Header.Get("X-Huge") != "" || len(m.Header.Get("X-Twilio-Signature")) != MetadataHeaderBytes || m.Header.Get("Content-Type") == "" {
		t.Errorf("headers kept: %v", m.Header)
	}
	if len(r.Body) != 5000 || r.Header.Get("X-Huge") == "" {
		t.Error("Metadata changed the request it was called on")
	}
	small := Request{Body: []byte("a=1"), Reason: "dup"}.Metadata()
	if string(small.Body) != "a=1" || small.Reason != "dup" {
		t.Errorf("a small request changed: %+v", small)
	}
}
