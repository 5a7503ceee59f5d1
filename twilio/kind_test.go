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
	tests := []struct {
		name     string
		route    string
		rawQuery string
		token    string
		kind     switchboard.Kind
		fields   Fields
		form     url.Values
		json     string
		method   string
		body     string
		want     string
	}{
		{
			name: "TokenWins", route: "/sms", token: "3f2c-uuid", kind: switchboard.KindMessage,
			fields: Fields{AccountSID: "AC1", MessageSID: "SM1"}, method: "POST",
			want: "tok:/sms:3f2c-uuid",
		},
		{
			name: "TokenOnOther", route: "/x", token: "u", kind: switchboard.KindOther, method: "GET",
			want: "tok:/x:u",
		},
		{
			name: "MessageStatus", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "delivered"},
			form:   formOf("MessageSid", "SM1", "MessageStatus", "delivered"),
			want:   "ms:AC1:SM1:delivered",
		},
		{
			name: "MessageStatusSequenceAndSource", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "sent"},
			form:   formOf("SequenceNumber", "2", "CallbackSource", "sms"),
			want:   "ms:AC1:SM1:sent:2:sms",
		},
		{
			name: "MessageStatusSourceOnly", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "sent"},
			form:   formOf("CallbackSource", "sms"),
			want:   "ms:AC1:SM1:sent:sms",
		},
		{
			name: "MessageStatusNoSID", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{AccountSID: "AC1", Status: "sent"}, method: "POST", body: "MessageStatus=sent",
			want: sha256Key("/status\nPOST\n\nMessageStatus=sent"),
		},
		{
			name: "MessageStatusNoStatus", route: "/status", kind: switchboard.KindMessageStatus,
			fields: Fields{AccountSID: "AC1", MessageSID: "SM1"}, method: "POST", body: "MessageSid=SM1&MessageStatus=",
			want: sha256Key("/status\nPOST\n\nMessageSid=SM1&MessageStatus="),
		},
		{
			name: "CallStatus", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{AccountSID: "AC1", CallSID: "CA1", Status: "completed"},
			form:   formOf("CallSid", "CA1", "CallStatus", "completed"),
			want:   "cs:AC1:CA1:completed",
		},
		{
			name: "CallStatusAllExtras", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{AccountSID: "AC1", CallSID: "CA1", Status: "in-progress"},
			form:   formOf("StatusCallbackEvent", "answered", "SequenceNumber", "1", "CallbackSource", "call-progress-events"),
			want:   "cs:AC1:CA1:in-progress:1:call-progress-events:answered",
		},
		{
			name: "CallStatusEventOnly", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{AccountSID: "AC1", CallSID: "CA1", Status: "ringing"},
			form:   formOf("StatusCallbackEvent", "ringing"),
			want:   "cs:AC1:CA1:ringing:ringing",
		},
		{
			name: "CallStatusNoSID", route: "/call-status", kind: switchboard.KindCallStatus,
			fields: Fields{Status: "completed"}, method: "POST", body: "CallStatus=completed",
			want: sha256Key("/call-status\nPOST\n\nCallStatus=completed"),
		},
		{
			name: "Message", route: "/sms", kind: switchboard.KindMessage,
			fields: Fields{AccountSID: "AC1", MessageSID: "SM1", Status: "received"},
			want:   "msg:AC1:SM1",
		},
		{
			name: "MessageNoSID", route: "/sms", kind: switchboard.KindMessage, method: "POST", body: "SmsSid=",
			want: sha256Key("/sms\nPOST\n\nSmsSid="),
		},
		{
			name: "Voice", route: "/voice", kind: switchboard.KindVoice,
			fields: Fields{AccountSID: "AC1", CallSID: "CA1", Status: "ringing"},
			want:   "voice:/voice?:CA1",
		},
		{
			name: "VoiceGatherAction", route: "/voice", rawQuery: "step=menu&lang=en", kind: switchboard.KindVoice,
			fields: Fields{CallSID: "CA1", Status: "in-progress"},
			want:   "voice:/voice?step=menu&lang=en:CA1",
		},
		{
			name: "VoiceNoSID", route: "/voice", rawQuery: "a=1", kind: switchboard.KindVoice, method: "GET",
			want: sha256Key("/voice\nGET\na=1\n"),
		},
		{
			name: "ClientNotification", route: "/notify", kind: switchboard.KindClientNotification,
			fields: Fields{AccountSID: "AC123", CallSID: "CA123"}, json: clientNotificationBody,
			want: "cn:WB123",
		},
		{
			name: "ClientNotificationEmptyID", route: "/notify", kind: switchboard.KindClientNotification,
			json: `{"twi_message_id":""}`, rawQuery: "bodySHA256=ab", method: "POST", body: `{"twi_message_id":""}`,
			want: sha256Key("/notify\nPOST\nbodySHA256=ab\n" + `{"twi_message_id":""}`),
		},
		{
			name: "FallbackMessage", route: "/sms-fallback", kind: switchboard.KindFallback,
			fields: Fields{AccountSID: "AC1", MessageSID: "SM1"},
			form:   formOf("ErrorCode", "11200", "ErrorUrl", "https://app/sms"),
			want:   "fb:/sms-fallback:SM1:11200",
		},
		{
			name: "FallbackCall", route: "/voice-fallback", kind: switchboard.KindFallback,
			fields: Fields{CallSID: "CA1"},
			form:   formOf("ErrorCode", "11205", "ErrorUrl", "https://app/voice"),
			want:   "fb:/voice-fallback:CA1:11205",
		},
		{
			name: "FallbackNoSID", route: "/fb", kind: switchboard.KindFallback, method: "POST",
			form: formOf("ErrorCode", "11205", "ErrorUrl", "u"), body: "ErrorCode=11205&ErrorUrl=u",
			want: sha256Key("/fb\nPOST\n\nErrorCode=11205&ErrorUrl=u"),
		},
		{
			name: "Other", route: "/hook", rawQuery: "x=1", kind: switchboard.KindOther, method: "POST", body: "Foo=bar",
			want: sha256Key("/hook\nPOST\nx=1\nFoo=bar"),
		},
		{
			name: "LongTokenHashed", route: "/sms", token: long, kind: switchboard.KindMessage,
			want: sha256Key("tok:/sms:" + long),
		},
		{
			name: "LongSIDHashed", route: "/sms", kind: switchboard.KindMessage,
			fields: Fields{AccountSID: "AC1", MessageSID: long},
			want:   sha256Key("msg:AC1:" + long),
		},
		{
			name: "KeyJustUnderLimit", route: "/sms", token: strings.Repeat("y", maxKeyLen-1-len("tok:/sms:")),
			want: "tok:/sms:" + strings.Repeat("y", maxKeyLen-1-len("tok:/sms:")),
		},
		{
			name: "KeyAtLimitHashed", route: "/sms", token: strings.Repeat("y", maxKeyLen-len("tok:/sms:")),
			want: sha256Key("tok:/sms:" + strings.Repeat("y", maxKeyLen-len("tok:/sms:"))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			var jsonBody []byte
			if tt.json != "" {
				jsonBody = []byte(tt.json)
			}
			got := IdempotencyKey(tt.route, tt.rawQuery, tt.token, tt.kind, tt.fields, tt.form, jsonBody, tt.method, []byte(tt.body))
			if got != tt.want {
				t.Errorf("IdempotencyKey = %q, want %q", got, tt.want)
			}
			if len(got) >= maxKeyLen {
				t.Errorf("key is %d bytes, want under %d", len(got), maxKeyLen)
			}
		})
	}
}

// TestIdempotencyKeyFromClassify runs requests through Classify and checks
// that retries share a key and distinct requests do not.
func TestIdempotencyKeyFromClassify(t *testing.T) {
	t.Parallel()

	key := func(route, rawQuery, body string) string {
		values, err := ParseForm([]byte(body))
		if err != nil {
			t.Fatalf("ParseForm(%q): %v", body, err)
		}
		kind, fields := Classify(formType, values, nil)
		return IdempotencyKey(route, rawQuery, "", kind, fields, values, nil, "POST", []byte(body))
	}

	sent := key("/status", "", "MessageSid=SM1&MessageStatus=sent&AccountSid=AC1")
	delivered := key("/status", "", "MessageSid=SM1&MessageStatus=delivered&AccountSid=AC1")
	sentAgain := key("/status", "", "AccountSid=AC1&MessageStatus=sent&MessageSid=SM1")
	if sent == delivered {
		t.Errorf("two statuses of one message share key %q", sent)
	}
	if sent != sentAgain {
		t.Errorf("a retried status callback changed key: %q, %q", sent, sentAgain)
	}

	menu := key("/voice", "step=menu", "CallSid=CA1&CallStatus=in-progress")
	confirm := key("/voice", "step=confirm", "CallSid=CA1&CallStatus=in-progress")
	if menu == confirm {
		t.Errorf("two action URLs of one call share key %q", menu)
	}
}
