package twilio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"

	"github.com/switchboard-dev/switchboard"
)

// Fields are the identifiers of a webhook request that Switchboard indexes
// events by. Any of them may be empty.
type Fields struct {
	AccountSID string
	MessageSID string
	CallSID    string
	Status     string // MessageStatus, SmsStatus or CallStatus, by kind
}

// terminalCallStatuses are the CallStatus values only a status callback
// carries: a call in one of them no longer asks for TwiML.
var terminalCallStatuses = map[string]bool{
	"completed": true,
	"busy":      true,
	"failed":    true,
	"no-answer": true,
	"canceled":  true,
}

// clientNotification is the part of a Voice SDK client notification that
// Classify and IdempotencyKey read.
type clientNotification struct {
	AccountSID   string // twi_account_sid
	CallSID      string // twi_call_sid
	MessageID    string // twi_message_id
	HasMessageID bool   // whether twi_message_id is there, as a string
}

// parseClientNotification decodes a JSON body, reporting false if it is not
// a JSON object. Member names are matched exactly, unlike encoding/json's
// struct decoding, and members that are not strings count as absent.
func parseClientNotification(jsonBody []byte) (clientNotification, bool) {
	var object map[string]json.RawMessage
	if err := json.Unmarshal(jsonBody, &object); err != nil || object == nil {
		return clientNotification{}, false
	}
	var n clientNotification
	n.AccountSID, _ = jsonString(object["twi_account_sid"])
	n.CallSID, _ = jsonString(object["twi_call_sid"])
	n.MessageID, n.HasMessageID = jsonString(object["twi_message_id"])
	return n, true
}

// jsonString decodes raw if it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Classify tells what a webhook request is about and extracts its
// identifiers. form holds the request's parameters (its form body, or its
// query for a GET) and jsonBody its body when the Content-Type is
// application/json.
//
// With Content-Type application/json, a body that is not a JSON object is
// KindOther and one with a string twi_message_id is a
// KindClientNotification; any other JSON object leaves the decision to the
// parameters. Of the rules for parameters, the first that matches wins:
//
//   - both ErrorCode and ErrorUrl make a KindFallback;
//   - MessageStatus makes a KindMessageStatus;
//   - MessageSid, SmsMessageSid or SmsSid make a KindMessage;
//   - CallSid makes a KindCallStatus if StatusCallbackEvent or CallDuration
//     is present or CallStatus is final (completed, busy, failed,
//     no-answer, canceled), and a KindVoice otherwise;
//   - anything else is KindOther.
//
// A parameter counts as present even when its value is empty. Fields are
// filled from whatever the request carries; Status is MessageStatus for a
// message status, SmsStatus for a message, CallStatus for a call, and for
// a fallback the CallStatus of a call or the SmsStatus of a message.
func Classify(contentType string, form url.Values, jsonBody []byte) (switchboard.Kind, Fields) {
	if mediaType(contentType) == "application/json" {
		n, ok := parseClientNotification(jsonBody)
		if !ok {
			return switchboard.KindOther, Fields{}
		}
		if n.HasMessageID {
			return switchboard.KindClientNotification, Fields{AccountSID: n.AccountSID, CallSID: n.CallSID}
		}
		// A well-formed JSON body without twi_message_id: the parameters,
		// if the caller has any, decide.
	}

	f := Fields{
		AccountSID: form.Get("AccountSid"),
		MessageSID: MessageSIDOf(form),
		CallSID:    form.Get("CallSid"),
	}
	switch {
	case form.Has("ErrorCode") && form.Has("ErrorUrl"):
		if form.Has("CallSid") {
			f.Status = form.Get("CallStatus")
		} else {
			f.Status = form.Get("SmsStatus")
		}
		return switchboard.KindFallback, f
	case form.Has("MessageStatus"):
		f.Status = form.Get("MessageStatus")
		return switchboard.KindMessageStatus, f
	case form.Has("MessageSid") || form.Has("SmsMessageSid") || form.Has("SmsSid"):
		f.Status = form.Get("SmsStatus")
		return switchboard.KindMessage, f
	case form.Has("CallSid"):
		f.Status = form.Get("CallStatus")
		if form.Has("StatusCallbackEvent") || form.Has("CallDuration") || terminalCallStatuses[f.Status] {
			return switchboard.KindCallStatus, f
		}
		return switchboard.KindVoice, f
	default:
		return switchboard.KindOther, f
	}
}

// maxKeyLen is the length under which IdempotencyKey keeps its keys, so
// that they index well in any store.
const maxKeyLen = 512

// Webhook is a verified webhook request as deduplication sees it: only
// what its signature covered, and the account whose token verified it.
type Webhook struct {
	Account  string           // the account whose auth token verified the signature
	Route    string           // the route's path (part of the signed URL)
	Kind     switchboard.Kind // as Classify returned it, not as a route forces it
	Fields   Fields           // as Classify returned them
	Form     url.Values       // the parameters Classify read
	JSONBody []byte           // the body Classify read, when it was JSON
	// Digest is Verified.Digest: the SHA-256 of the string the signature
	// was computed over.
	Digest [sha256.Size]byte
}

// IdempotencyKey returns the key under which a webhook request is stored:
// the same for every copy of one signed request (Twilio's retries, or an
// attacker's replays) and different for distinct requests. It is built
// from signed content and the verifying account only, never from headers
// (I-Twilio-Idempotency-Token, which no signature covers, is ignored) or
// anything else a replay could vary, so a replay of signed content is a
// duplicate whatever its unsigned parts say. By kind, the first rule that
// applies:
//
//   - a message status: "ms:<account>:<MessageSid>:<status>", then
//     ":<SequenceNumber>" and ":<CallbackSource>" for each of those that
//     is present, since one status can be reported by several sources;
//   - a call status: "cs:<account>:<CallSid>:<CallStatus>", then
//     ":<SequenceNumber>", ":<CallbackSource>" and ":<StatusCallbackEvent>"
//     for each of those that is present;
//   - an inbound message: "msg:<account>:<MessageSid>";
//   - a voice request: "voice:<account>:<CallSid>:<digest>", the digest
//     telling apart the action URLs and Digits one call sends;
//   - a client notification: "cn:<account>:<twi_message_id>";
//   - a fallback: "fb:<account>:<route>:<MessageSid or CallSid>:<ErrorCode>";
//   - anything else, or a kind whose identifiers are missing:
//     "sig:<account>:<digest>".
//
// <digest> is the hex Digest. A key would be 512 bytes or longer only for
// hostile input; it is then replaced by "sha256:" and the hex SHA-256 of
// itself.
func (w Webhook) IdempotencyKey() string {
	key := w.identityKey()
	if key == "" {
		key = "sig:" + w.Account + ":" + hex.EncodeToString(w.Digest[:])
	}
	if len(key) >= maxKeyLen {
		key = hashKey(key)
	}
	return key
}

// identityKey returns the key built from the request's identifiers, or ""
// if it lacks those its kind needs.
func (w Webhook) identityKey() string {
	f, form, acct := w.Fields, w.Form, w.Account
	switch w.Kind {
	case switchboard.KindMessageStatus:
		if f.MessageSID == "" || f.Status == "" {
			return ""
		}
		return "ms:" + acct + ":" + f.MessageSID + ":" + f.Status + optional(form, "SequenceNumber", "CallbackSource")
	case switchboard.KindCallStatus:
		if f.CallSID == "" || f.Status == "" {
			return ""
		}
		return "cs:" + acct + ":" + f.CallSID + ":" + f.Status +
			optional(form, "SequenceNumber", "CallbackSource", "StatusCallbackEvent")
	case switchboard.KindMessage:
		if f.MessageSID == "" {
			return ""
		}
		return "msg:" + acct + ":" + f.MessageSID
	case switchboard.KindVoice:
		if f.CallSID == "" {
			return ""
		}
		return "voice:" + acct + ":" + f.CallSID + ":" + hex.EncodeToString(w.Digest[:])
	case switchboard.KindClientNotification:
		n, ok := parseClientNotification(w.JSONBody)
		if !ok || n.MessageID == "" {
			return ""
		}
		return "cn:" + acct + ":" + n.MessageID
	case switchboard.KindFallback:
		sid := f.MessageSID
		if sid == "" {
			sid = f.CallSID
		}
		if sid == "" {
			return ""
		}
		return "fb:" + acct + ":" + w.Route + ":" + sid + ":" + form.Get("ErrorCode")
	default:
		return ""
	}
}

// optional returns ":" and the value of each of keys present in form.
func optional(form url.Values, keys ...string) string {
	var s string
	for _, k := range keys {
		if form.Has(k) {
			s += ":" + form.Get(k)
		}
	}
	return s
}

func hashKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}
