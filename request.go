package switchboard

import (
	"fmt"
	"net/http"
)

// Bounds of what a request recorded as metadata keeps (Request.Metadata).
const (
	MetadataBodyBytes   = 256  // body bytes kept
	MetadataURLBytes    = 1024 // URL bytes kept
	MetadataHeaderBytes = 256  // bytes kept of each header value kept
)

// metadataHeaders are the headers a request recorded as metadata keeps:
// enough to tell what sent it and what it claimed, nothing it can grow.
var metadataHeaders = []string{"Content-Type", "Content-Length", "User-Agent", "X-Twilio-Signature",
	"I-Twilio-Idempotency-Token", "X-Forwarded-For"}

// Metadata returns the request as it is recorded when its content need not
// be kept whole: a rejected request (whoever sent it may be an attacker)
// and a duplicate (its original holds the content). It keeps the method,
// route, remote address, outcome and reason, the first MetadataURLBytes of
// the URL, a few headers cut to MetadataHeaderBytes, and the first
// MetadataBodyBytes of the body; a longer body's size is added to the
// reason. So however large or many such requests are, each costs a small,
// bounded row.
func (r Request) Metadata() Request {
	if len(r.Body) > MetadataBodyBytes {
		r.Reason += fmt.Sprintf(" [body: %d bytes, first %d kept]", len(r.Body), MetadataBodyBytes)
		r.Body = r.Body[:MetadataBodyBytes:MetadataBodyBytes]
	}
	if len(r.URL) > MetadataURLBytes {
		r.URL = r.URL[:MetadataURLBytes]
	}
	kept := http.Header{}
	for _, name := range metadataHeaders {
		if v := r.Header.Get(name); v != "" {
			kept.Set(name, v[:min(len(v), MetadataHeaderBytes)])
		}
	}
	r.Header = kept
	return r
}
