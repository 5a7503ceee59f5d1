package switchboard

import "time"

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
	ResourceSID string // only about this resource
	ErrorCode   int    // only with this code (0: any)
	Since       time.Time
	Until       time.Time
	Limit       int
	Cursor      string
}
