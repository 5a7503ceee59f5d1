package doctor_test

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/twilio"
)

func TestFix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		class string
		code  twilio.Code
		want  string // a word the fix must hold; "" for none
	}{
		{"dns", twilio.CodeBadHostName, "DNS"},
		{"connect", twilio.CodeHTTPConnectionFailure, "listens"},
		{"timeout", twilio.CodeHTTPConnectionFailure, "background"},
		{"http-status", twilio.CodeHTTPRetrievalFailure, "2xx"},
		{"content-type", twilio.CodeInvalidContentType, "application/xml"},
		{"denied", 0, "egress.allow"},
		// An unknown class falls back to its code.
		{"something-new", twilio.CodeDocumentParseFailure, "well-formed"},
		{"", twilio.CodeClientNotificationFailed, "200"},
		{"", 0, ""},
		{"interrupted", 0, ""},
	} {
		got := doctor.Fix(tc.class, tc.code)
		switch {
		case tc.want == "" && got != "":
			t.Errorf("Fix(%q, %d) = %q, want none", tc.class, tc.code, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("Fix(%q, %d) = %q, want it to mention %q", tc.class, tc.code, got, tc.want)
		}
	}
}
