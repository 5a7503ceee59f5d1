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
		MessageSID: messageSID(form),
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

// messageSID returns the first non-empty of the three names Twilio gives a
// message's SID, newest first.
func messageSID(form url.Values) string {
	for _, k := range []string{"MessageSid", "SmsMessageSid", "SmsSid"} {
		if v := form.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// maxKeyLen is the length under which IdempotencyKey keeps its keys, so
// that they index well in any store.
const maxKeyLen = 512

// IdempotencyKey returns the key under which a webhook request is stored,
// the same for Twilio's retries of one request and different for distinct
// requests, in this order of preference:
//
//   - the I-Twilio-Idempotency-Token header, token, which Twilio repeats on
//     its retries: "tok:<route>:<token>";
//   - a message status: "ms:<AccountSID>:<MessageSID>:<Status>", then
//     ":<SequenceNumber>" and ":<CallbackSource>" for each of those that
//     is present, since one status can be reported by several sources;
//   - a call status: "cs:<AccountSID>:<CallSID>:<Status>", then
//     ":<SequenceNumber>", ":<CallbackSource>" and ":<StatusCallbackEvent>"
//     for each of those that is present;
//   - an inbound message: "msg:<AccountSID>:<MessageSID>";
//   - a voice request: "voice:<route>?<rawQuery>:<CallSID>", the query
//     telling apart the action URLs one call visits on one route;
//   - a client notification: "cn:<twi_message_id>";
//   - a fallback: "fb:<route>:<MessageSID or CallSID>:<ErrorCode>";
//   - otherwise, or when the identifiers a rule needs are empty, a hash of
//     the request: "sha256:" and the hex SHA-256 of route, method, rawQuery
//     and body, separated by newlines.
//
// kind and f are what Classify returned for the request. A key would be
// 512 bytes or longer only for hostile input; it is then replaced by
// "sha256:" and the hex SHA-256 of itself.
func IdempotencyKey(route, rawQuery, token string, kind switchboard.Kind, f Fields, form url.Values, jsonBody []byte, method string, body []byte) string {
	key := identityKey(route, rawQuery, token, kind, f, form, jsonBody)
	if key == "" {
		key = hashKey(route + "\n" + method + "\n" + rawQuery + "\n" + string(body))
	}
	if len(key) >= maxKeyLen {
		key = hashKey(key)
	}
	return key
}

// identityKey returns the key built from the request's identifiers, or ""
// if it lacks those its kind needs.
func identityKey(route, rawQuery, token string, kind switchboard.Kind, f Fields, form url.Values, jsonBody []byte) string {
	if token != "" {
		return "tok:" + route + ":" + token
	}
	switch kind {
	case switchboard.KindMessageStatus:
		if f.MessageSID == "" || f.Status == "" {
			return ""
		}
		return "ms:" + f.AccountSID + ":" + f.MessageSID + ":" + f.Status +
			optional(form, "SequenceNumber", "CallbackSource")
	case switchboard.KindCallStatus:
		if f.CallSID == "" || f.Status == "" {
			return ""
		}
		return "cs:" + f.AccountSID + ":" + f.CallSID + ":" + f.Status +
			optional(form, "SequenceNumber", "CallbackSource", "StatusCallbackEvent")
	case switchboard.KindMessage:
		if f.MessageSID == "" {
			return ""
		}
		return "msg:" + f.AccountSID + ":" + f.MessageSID
	case switchboard.KindVoice:
		if f.CallSID == "" {
			return ""
		}
		return "voice:" + route + "?" + rawQuery + ":" + f.CallSID
	case switchboard.KindClientNotification:
		n, ok := parseClientNotification(jsonBody)
		if !ok || n.MessageID == "" {
			return ""
		}
		return "cn:" + n.MessageID
	case switchboard.KindFallback:
		sid := f.MessageSID
		if sid == "" {
			sid = f.CallSID
		}
		if sid == "" {
			return ""
		}
		return "fb:" + route + ":" + sid + ":" + form.Get("ErrorCode")
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
