package switchboard

import (
	"encoding/json"
	"strings"
	"time"
)

// DebuggerAlert is one of Twilio's Debugger webhooks (a route of kind
// debugger): an error or warning Twilio logged, whoever's URL it was
// about. Stored once per Sid.
type DebuggerAlert struct {
	Sid         string // NO…, the alert's SID: what duplicates share
	AccountSID  string
	Level       string // "Error" or "Warning", as Twilio sends it
	Timestamp   time.Time
	PayloadType string // "application/json"
	// From the Payload: the resource the alert is about (SM…, MM…,
	// CA…), its error code, and the webhook Twilio called and what it got.
	ResourceSID string
	ErrorCode   int
	Method      string
	URL         string
	Status      int    // the answer's status, 0 when none
	MoreInfo    string // Twilio's page on the code
	Payload     []byte // the Payload field as received (JSON)
	// EventID is the debugger route's event of the webhook that carried
	// it; ReceivedAt when that was stored.
	EventID    string
	ReceivedAt time.Time
}

// DebuggerFilter selects debugger alerts, newest first.
type DebuggerFilter struct {
	// AccountSID, when set, selects that account's alerts only: a
	// resource SID names one account's resource, and another account's
	// alerts naming it are not about it.
	AccountSID  string
	ResourceSID string // only about this resource
	ErrorCode   int    // only with this code (0: any)
	Since       time.Time
	Until       time.Time
	Limit       int
	Cursor      string
}

// Redact returns a copy of a with what admin.redact hides hidden: the
// query of the URL Twilio called and, in the payload, the webhook's
// parameters, headers and answer bodies, and every phone number or URL
// query in the rest (see RedactText). A payload that is not JSON is
// hidden whole.
func (a *DebuggerAlert) Redact() *DebuggerAlert {
	out := *a
	out.URL = RedactQuery(a.URL)
	var doc any
	if err := json.Unmarshal(a.Payload, &doc); err != nil {
		out.Payload = []byte(`"` + Redacted + `"`)
		return &out
	}
	b, err := json.Marshal(redactJSON(doc))
	if err != nil {
		b = []byte(`"` + Redacted + `"`)
	}
	out.Payload = b
	return &out
}

// redactedFields are the payload's fields that carry a person's data
// whole: a webhook's parameters (From, To, Body …), its headers, and the
// bodies of its request and answer.
var redactedFields = map[string]bool{"parameters": true, "headers": true, "body": true}

func redactJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if redactedFields[strings.ToLower(k)] {
				v[k] = Redacted
			} else {
				v[k] = redactJSON(x)
			}
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = redactJSON(x)
		}
		return v
	case string:
		return RedactText(v)
	}
	return v
}
