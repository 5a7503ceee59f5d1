package twilio

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard"
)

const clientNotificationBody = `{"twi_account_sid":"AC123","twi_bridge_token":"tok","twi_call_sid":"CA123",` +
	`"twi_from":"+1","twi_to":"client:alice","twi_message_id":"WB123","twi_message_type":"twilio.voice.call"}`

func formOf(pairs ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return v
}

func TestClassify(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name        string
		contentType string
		form        url.Values
		json        string
		wantKind    switchboard.Kind
		wantFields  Fields
	}{
		{
			name: "InboundSMS", contentType: formType,
			form: formOf("MessageSid", "SM1", "SmsSid", "SM1", "SmsMessageSid", "SM1", "AccountSid", "AC1",
				"From", "+1", "To", "+2", "Body", "hi", "SmsStatus", "received", "NumMedia", "0"),
			wantKind:   switchboard.KindMessage,
			wantFields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "received"},
		},
		{
			name: "InboundOnlySmsMessageSid", contentType: formType,
			form:       formOf("SmsMessageSid", "SM2", "SmsSid", "SM3", "AccountSid", "AC1"),
			wantKind:   switchboard.KindMessage,
			wantFields: Fields{AccountSID: "AC1", MessageSID: "SM2"},
		},
		{
			name: "InboundOnlySmsSid", contentType: formType,
			form:       formOf("SmsSid", "SM3", "AccountSid", "AC1", "SmsStatus", "received"),
			wantKind:   switchboard.KindMessage,
			wantFields: Fields{AccountSID: "AC1", MessageSID: "SM3", Status: "received"},
		},
		{
			name: "MessageStatus", contentType: formType,
			form: formOf("MessageSid", "SM1", "SmsSid", "SM1", "MessageStatus", "delivered", "SmsStatus", "delivered",
				"AccountSid", "AC1", "RawDlrDoneDate", "2401011200"),
			wantKind:   switchboard.KindMessageStatus,
			wantFields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "delivered"},
		},
		{
			name: "MessageStatusFailed", contentType: formType,
			form:       formOf("MessageSid", "SM1", "MessageStatus", "failed", "ErrorCode", "30007", "AccountSid", "AC1"),
			wantKind:   switchboard.KindMessageStatus,
			wantFields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "failed"},
		},
		{
			name: "Voice", contentType: voiceFormType,
			form:       formOf("CallSid", "CA1", "AccountSid", "AC1", "CallStatus", "ringing", "Direction", "inbound"),
			wantKind:   switchboard.KindVoice,
			wantFields: Fields{AccountSID: "AC1", CallSID: "CA1", Status: "ringing"},
		},
		{
			name: "VoiceGatherAction", contentType: voiceFormType,
			form:       formOf("CallSid", "CA1", "AccountSid", "AC1", "CallStatus", "in-progress", "Digits", "1"),
			wantKind:   switchboard.KindVoice,
			wantFields: Fields{AccountSID: "AC1", CallSID: "CA1", Status: "in-progress"},
		},
		{
			name: "VoiceGETQuery", contentType: "",
			form:       formOf("CallSid", "CA1", "CallStatus", "ringing"),
			wantKind:   switchboard.KindVoice,
			wantFields: Fields{CallSID: "CA1", Status: "ringing"},
		},
		{
			name: "CallStatusEvent", contentType: voiceFormType,
			form:       formOf("CallSid", "CA1", "AccountSid", "AC1", "CallStatus", "ringing", "StatusCallbackEvent", "ringing"),
			wantKind:   switchboard.KindCallStatus,
			wantFields: Fields{AccountSID: "AC1", CallSID: "CA1", Status: "ringing"},
		},
		{
			name: "CallStatusDuration", contentType: voiceFormType,
			form:       formOf("CallSid", "CA1", "CallStatus", "in-progress", "CallDuration", "12"),
			wantKind:   switchboard.KindCallStatus,
			wantFields: Fields{CallSID: "CA1", Status: "in-progress"},
		},
		{name: "CallStatusCompleted", form: formOf("CallSid", "CA1", "CallStatus", "completed"), wantKind: switchboard.KindCallStatus, wantFields: Fields{CallSID: "CA1", Status: "completed"}},
		{name: "CallStatusBusy", form: formOf("CallSid", "CA1", "CallStatus", "busy"), wantKind: switchboard.KindCallStatus, wantFields: Fields{CallSID: "CA1", Status: "busy"}},
		{name: "CallStatusFailed", form: formOf("CallSid", "CA1", "CallStatus", "failed"), wantKind: switchboard.KindCallStatus, wantFields: Fields{CallSID: "CA1", Status: "failed"}},
		{name: "CallStatusNoAnswer", form: formOf("CallSid", "CA1", "CallStatus", "no-answer"), wantKind: switchboard.KindCallStatus, wantFields: Fields{CallSID: "CA1", Status: "no-answer"}},
		{name: "CallStatusCanceled", form: formOf("CallSid", "CA1", "CallStatus", "canceled"), wantKind: switchboard.KindCallStatus, wantFields: Fields{CallSID: "CA1", Status: "canceled"}},
		{
			name: "FallbackMessage", contentType: formType,
			form: formOf("MessageSid", "SM1", "AccountSid", "AC1", "SmsStatus", "received",
				"ErrorCode", "11200", "ErrorUrl", "https://app/sms"),
			wantKind:   switchboard.KindFallback,
			wantFields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "received"},
		},
		{
			name: "FallbackVoice", contentType: voiceFormType,
			form:       formOf("CallSid", "CA1", "CallStatus", "ringing", "ErrorCode", "11205", "ErrorUrl", "https://app/voice"),
			wantKind:   switchboard.KindFallback,
			wantFields: Fields{CallSID: "CA1", Status: "ringing"},
		},
		{
			name: "ErrorCodeAloneIsNotFallback", contentType: formType,
			form:       formOf("MessageSid", "SM1", "MessageStatus", "undelivered", "ErrorCode", "30003"),
			wantKind:   switchboard.KindMessageStatus,
			wantFields: Fields{MessageSID: "SM1", Status: "undelivered"},
		},
		{
			name: "ClientNotification", contentType: jsonType, json: clientNotificationBody,
			wantKind:   switchboard.KindClientNotification,
			wantFields: Fields{AccountSID: "AC123", CallSID: "CA123"},
		},
		{
			name: "ClientNotificationCharset", contentType: "application/json; charset=utf-8", json: `{"twi_message_id":"WB1"}`,
			wantKind: switchboard.KindClientNotification,
		},
		{name: "JSONWithoutMessageID", contentType: jsonType, json: `{"twi_call_sid":"CA1"}`, wantKind: switchboard.KindOther},
		{name: "JSONMessageIDNotString", contentType: jsonType, json: `{"twi_message_id":5}`, wantKind: switchboard.KindOther},
		{name: "JSONMemberNameCaseMatters", contentType: jsonType, json: `{"TWI_MESSAGE_ID":"WB1"}`, wantKind: switchboard.KindOther},
		{name: "MalformedJSON", contentType: jsonType, json: `{"twi_message_id":`, form: formOf("CallSid", "CA1"), wantKind: switchboard.KindOther},
		{name: "JSONArray", contentType: jsonType, json: `[{"twi_message_id":"WB1"}]`, wantKind: switchboard.KindOther},
		{name: "JSONNull", contentType: jsonType, json: `null`, wantKind: switchboard.KindOther},
		{name: "JSONBodyWithoutJSONType", contentType: formType, json: clientNotificationBody, wantKind: switchboard.KindOther},
		{name: "EmptyForm", contentType: formType, form: url.Values{}, wantKind: switchboard.KindOther},
		{name: "NilForm", contentType: "", wantKind: switchboard.KindOther},
		{name: "Unrecognised", contentType: formType, form: formOf("AccountSid", "AC1", "Foo", "bar"), wantKind: switchboard.KindOther, wantFields: Fields{AccountSID: "AC1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			var jsonBody []byte
			if tt.json != "" {
				jsonBody = []byte(tt.json)
			}
			kind, fields := Classify(tt.contentType, tt.form, jsonBody)
			if kind != tt.wantKind {
				t.Errorf("kind = %q, want %q", kind, tt.wantKind)
			}
			if fields != tt.wantFields {
				t.Errorf("fields = %+v, want %+v", fields, tt.wantFields)
			}
		})
	}
}

func sha256Key(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()

	long := strings.Repeat("x", 600)
	digest := sha256.Sum256([]byte("the signed string"))
	hexDigest := hex.EncodeToString(digest[:])
	tests := []struct {
		name   string
		route  string
		kind   switchboard.Kind
		fields Fields
		form   url.Values
		json   string
		want   string
	}{
		{
			name: "MessageStatus", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{MessageSID: "SM1", Status: "delivered"},
			form:   formOf("MessageSid", "SM1", "MessageStatus", "delivered"),
			want:   "ms:AC1:SM1:delivered",
		},
		{
			name: "MessageStatusSequenceAndSource", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{MessageSID: "SM1", Status: "sent"},
			form:   formOf("SequenceNumber", "2", "CallbackSource", "sms"),
			want:   "ms:AC1:SM1:sent:2:sms",
		},
		{
			name: "MessageStatusSourceOnly", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{MessageSID: "SM1", Status: "sent"},
			form:   formOf("CallbackSource", "sms"),
			want:   "ms:AC1:SM1:sent:sms",
		},
		{
			name: "MessageStatusNoSID", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{Status: "sent"},
			want:   "sig:AC1:" + hexDigest,
		},
		{
			name: "MessageStatusNoStatus", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{MessageSID: "SM1"},
			want:   "sig:AC1:" + hexDigest,
		},
		{
			name: "CallStatus", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{CallSID: "CA1", Status: "completed"},
			form:   formOf("CallSid", "CA1", "CallStatus", "completed"),
			want:   "cs:AC1:CA1:completed",
		},
		{
			name: "CallStatusAllExtras", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{CallSID: "CA1", Status: "in-progress"},
			form:   formOf("StatusCallbackEvent", "answered", "SequenceNumber", "1", "CallbackSource", "call-progress-events"),
			want:   "cs:AC1:CA1:in-progress:1:call-progress-events:answered",
		},
		{
			name: "CallStatusEventOnly", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{CallSID: "CA1", Status: "ringing"},
			form:   formOf("StatusCallbackEvent", "ringing"),
			want:   "cs:AC1:CA1:ringing:ringing",
		},
		{
			name: "CallStatusNoSID", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{Status: "completed"},
			want:   "sig:AC1:" + hexDigest,
		},
		{
			name: "Message", route: "/sms", kind: switchboard.KindMessage,
			fields: Fields{MessageSID: "SM1", Status: "received"},
			want:   "msg:AC1:SM1",
		},
		{
			name: "MessageNoSID", route: "/sms", kind: switchboard.KindMessage,
			want: "sig:AC1:" + hexDigest,
		},
		{
			name: "Voice", route: "/voice", kind: switchboard.KindVoice,
			fields: Fields{CallSID: "CA1", Status: "ringing"},
			want:   "voice:AC1:CA1:" + hexDigest,
		},
		{
			name: "VoiceNoSID", route: "/voice", kind: switchboard.KindVoice,
			want: "sig:AC1:" + hexDigest,
		},
		{
			name: "ClientNotification", route: "/notify", kind: switchboard.KindClientNotification,
			fields: Fields{CallSID: "CA123"}, json: clientNotificationBody,
			want: "cn:AC1:WB123",
		},
		{
			name: "ClientNotificationEmptyID", route: "/notify", kind: switchboard.KindClientNotification,
			json: `{"twi_message_id":""}`,
			want: "sig:AC1:" + hexDigest,
		},
		{
			name: "FallbackMessage", route: "/sms-fallback", kind: switchboard.KindFallback,
			fields: Fields{MessageSID: "SM1"},
			form:   formOf("ErrorCode", "11200", "ErrorUrl", "https://app/sms"),
			want:   "fb:AC1:/sms-fallback:SM1:11200",
		},
		{
			name: "FallbackCall", route: "/voice-fallback", kind: switchboard.KindFallback,
			fields: Fields{CallSID: "CA1"},
			form:   formOf("ErrorCode", "11205", "ErrorUrl", "https://app/voice"),
			want:   "fb:AC1:/voice-fallback:CA1:11205",
		},
		{
			name: "FallbackNoSID", route: "/fb", kind: switchboard.KindFallback,
			form: formOf("ErrorCode", "11205", "ErrorUrl", "u"),
			want: "sig:AC1:" + hexDigest,
		},
		{
			name: "Other", route: "/hook", kind: switchboard.KindOther,
			want: "sig:AC1:" + hexDigest,
		},
		{
			name: "LongSIDHashed", route: "/sms", kind: switchboard.KindMessage,
			fields: Fields{MessageSID: long},
			want:   sha256Key("msg:AC1:" + long),
		},
		{
			name: "KeyJustUnderLimit", route: "/sms", kind: switchboard.KindMessage,
			fields: Fields{MessageSID: strings.Repeat("y", maxKeyLen-1-len("msg:AC1:"))},
			want:   "msg:AC1:" + strings.Repeat("y", maxKeyLen-1-len("msg:AC1:")),
		},
		{
			name: "KeyAtLimitHashed", route: "/sms", kind: switchboard.KindMessage,
			fields: Fields{MessageSID: strings.Repeat("y", maxKeyLen-len("msg:AC1:"))},
			want:   sha256Key("msg:AC1:" + strings.Repeat("y", maxKeyLen-len("msg:AC1:"))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			var jsonBody []byte
			if tt.json != "" {
				jsonBody = []byte(tt.json)
			}
			w := Webhook{Account: "AC1", Route: tt.route, Kind: tt.kind, Fields: tt.fields, Form: tt.form, JSONBody: jsonBody, Digest: digest}
			got := w.IdempotencyKey()
			if got != tt.want {
				t.Errorf("IdempotencyKey = %q, want %q", got, tt.want)
			}
			if len(got) >= maxKeyLen {
				t.Errorf("key is %d bytes, want under %d", len(got), maxKeyLen)
			}
		})
	}
}

// TestIdempotencyKeyFromSignedRequests runs signed requests through Verify
// and Classify and checks that copies of one signed request share a key,
// whatever their unsigned parts, and that distinct requests do not.
func TestIdempotencyKeyFromSignedRequests(t *testing.T) {
	t.Parallel()

	const token = "12345"
	var keyAs func(account, signedFor, u, body string) string
	key := func(account, u, body string) string {
		t.Helper()
		return keyAs(account, u, u, body)
	}
	keyAs = func(account, signedFor, u, body string) string {
		t.Helper()
		values, err := ParseForm([]byte(body))
		if err != nil {
			t.Fatalf("ParseForm(%q): %v", body, err)
		}
		v, err := Verify([]string{token}, Request{Method: "POST", URL: u, ContentType: formType, Body: []byte(body)},
			Signature(token, stripFragment(signedFor), values))
		if err != nil {
			t.Fatalf("Verify(%s, %s): %v", u, body, err)
		}
		kind, fields := Classify(formType, v.Form, nil)
		return Webhook{Account: account, Route: "/r", Kind: kind, Fields: fields, Form: v.Form, Digest: v.Digest}.IdempotencyKey()
	}
	const status = "https://h.example/status"
	sent := key("AC1", status, "MessageSid=SM1&MessageStatus=sent&AccountSid=AC1")
	for name, k := range map[string]string{
		"Reordered":       key("AC1", status, "AccountSid=AC1&MessageStatus=sent&MessageSid=SM1"),
		"FragmentAdded":   key("AC1", status+"#rc=5", "MessageSid=SM1&MessageStatus=sent&AccountSid=AC1"),
		"EscapedDiffers":  key("AC1", status, "MessageSid=%53M1&MessageStatus=sent&AccountSid=AC1"),
		"PairRepeated":    key("AC1", status, "MessageSid=SM1&MessageStatus=sent&AccountSid=AC1&MessageSid=SM1"),
		"EmptyPairsAdded": key("AC1", status, "&&MessageSid=SM1&&MessageStatus=sent&AccountSid=AC1"),
	} {
		if k != sent {
			t.Errorf("%s: a copy of one signed status callback got key %q, want %q", name, k, sent)
		}
	}
	if k := key("AC1", status, "MessageSid=SM1&MessageStatus=delivered&AccountSid=AC1"); k == sent {
		t.Errorf("two statuses of one message share key %q", sent)
	}
	if k := key("AC2", status, "MessageSid=SM1&MessageStatus=sent&AccountSid=AC2"); k == sent {
		t.Errorf("two accounts share key %q", sent)
	}

	menu := key("AC1", "https://h.example/voice?step=menu", "CallSid=CA1&CallStatus=in-progress")
	confirm := key("AC1", "https://h.example/voice?step=confirm", "CallSid=CA1&CallStatus=in-progress")
	digits := key("AC1", "https://h.example/voice?step=menu", "CallSid=CA1&CallStatus=in-progress&Digits=2")
	if menu == confirm || menu == digits {
		t.Errorf("distinct requests of one call share a key: %q, %q, %q", menu, confirm, digits)
	}
	other := key("AC1", "https://h.example/hook", "Foo=bar")
	if other != keyAs("AC1", "https://h.example/hook", "https://h.example:443/hook", "Foo=bar") {
		t.Error("a request with no identity changed key with the URL's port spelling")
	}
}
