package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/twilio"
)

// replyApp answers inbound messages with <Message> verbs echoing their
// body, and calls with <Say>.
func replyApp() *app {
	return newApp(func(w http.ResponseWriter, r *http.Request, _ int) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		switch r.URL.Path {
		case "/voice":
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Say>hello</Say></Response>`))
		case "/silent":
			_, _ = w.Write([]byte(`<Response/>`))
		default:
			_, _ = w.Write([]byte(`<Response><Message>echo: ` + r.Form.Get("Body") + `</Message><Message><Body>second</Body></Message></Response>`))
		}
	})
}

// TestOptOutKeywords: STOP and its synonyms, in any case, opt the sender
// out; sends to it then fail with 21610 until START.
func TestOptOutKeywords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stop, start string
	}{
		{"STOP", "START"},
		{"unsubscribe", "yes"},
		{"  Cancel ", "Unstop"},
		{"stopall", "start"},
		{"QUIT", "START"},
		{"end", "start"},
		{"revoke", "start"},
		{"OptOut", "start"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.stop), func(t *testing.T) {
			t.Parallel()
			a := newApp(nil)
			srv := startApp(t, a)
			cfg := testConfig()
			numberOf(t, &cfg, longCode).SMSURL = srv.URL + "/sms"
			s := newSim(t, cfg)
			ctx := withTimeout(t)

			send := func() error {
				_, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: "news"})
				return err
			}
			if err := send(); err != nil {
				t.Fatalf("before STOP: %v", err)
			}
			res, err := s.ReceiveMessage(ctx, InboundMessage{From: handset, To: longCode, Body: tt.stop})
			if err != nil {
				t.Fatal(err)
			}
			if res.OptOut != "STOP" || lastTo(t, a, "/sms").Form.Get("OptOutType") != "STOP" {
				t.Errorf("opt-out %q, OptOutType %q; want STOP", res.OptOut, lastTo(t, a, "/sms").Form.Get("OptOutType"))
			}
			if got := s.OptedOut(acctSID); !slices.Contains(got, handset) {
				t.Errorf("opted out: %v, want %s among them", got, handset)
			}
			var re *RestError
			if err := send(); !errors.As(err, &re) || re.Code != twilio.CodeUnsubscribedRecipient {
				t.Errorf("after STOP: %v, want 21610", err)
			}
			// From any of the account's numbers, through a service too.
			if _, err := s.CreateMessage(acctSID, SendParams{MessagingServiceSID: serviceSID, To: handset, Body: "x"}); !errors.As(err, &re) || re.Code != 21610 {
				t.Errorf("after STOP, through the service: %v, want 21610", err)
			}
			// Other accounts are not concerned.
			if _, err := s.CreateMessage(otherSID, SendParams{From: otherNum, To: handset, Body: "x"}); err != nil {
				t.Errorf("another account's send: %v", err)
			}

			res, err = s.ReceiveMessage(ctx, InboundMessage{From: handset, To: longCode, Body: tt.start})
			if err != nil {
				t.Fatal(err)
			}
			if res.OptOut != "START" || slices.Contains(s.OptedOut(acctSID), handset) {
				t.Errorf("after %s: opt-out %q, opted out %v", tt.start, res.OptOut, s.OptedOut(acctSID))
			}
			if err := send(); err != nil {
				t.Errorf("after START: %v", err)
			}
		})
	}

	t.Run("NotKeywords", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, testConfig())
		for _, body := range []string{"please stop", "STOP!", "stopp", "help", "INFO"} {
			res, err := s.ReceiveMessage(withTimeout(t), InboundMessage{From: handset2, To: longCode, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if res.OptOut == "STOP" || len(s.OptedOut(acctSID)) != 1 { // only the configured one
				t.Errorf("%q opted the sender out (%v)", body, s.OptedOut(acctSID))
			}
			if (body == "help" || body == "INFO") != (res.OptOut == "HELP") {
				t.Errorf("%q: opt-out %q", body, res.OptOut)
			}
		}
	})
}

// TestInboundReply: <Message> verbs in the answer become outbound-reply
// messages from the number to the handset, with the inbound message kept.
func TestInboundReply(t *testing.T) {
	t.Parallel()
	a := replyApp()
	srv := startApp(t, a)
	cfg := testConfig()
	numberOf(t, &cfg, longCode).SMSURL = srv.URL + "/sms"
	numberOf(t, &cfg, tollFree).SMSURL = srv.URL + "/silent"
	s := newSim(t, cfg)
	ctx := withTimeout(t)

	res, err := s.ReceiveMessage(ctx, InboundMessage{From: handset, To: longCode, Body: "ping"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Replies) != 2 {
		t.Fatalf("replies %v, want 2", res.Replies)
	}
	in, _ := s.Message(res.SID)
	if in.Direction != "inbound" || in.Status != StatusReceived || in.From != handset || in.To != longCode || !messageSIDPattern.MatchString(in.SID) {
		t.Errorf("inbound message %+v", in)
	}
	for i, want := range []string{"echo: ping", "second"} {
		m, ok := s.Message(res.Replies[i])
		if !ok || m.Direction != "outbound-reply" || m.Body != want || m.From != longCode || m.To != handset {
			t.Errorf("reply %d: %+v; want outbound-reply %q from %s to %s", i, m, want, longCode, handset)
		}
	}
	msgs := s.Messages(acctSID)
	if len(msgs) != 3 || msgs[0].SID != res.SID {
		t.Errorf("%d messages, want the inbound one and its 2 replies", len(msgs))
	}

	// The REST API shows them too.
	rec := serve(s.Handler(), apiRequest(http.MethodGet, "/2010-04-01/Accounts/"+acctSID+"/Messages/"+res.Replies[0]+".json", acctSID, acctToken, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"direction":"outbound-reply"`) {
		t.Errorf("fetch reply: %d %s", rec.Code, rec.Body)
	}

	// An empty <Response/> replies nothing; a handset that opted out gets
	// no reply.
	if res, err := s.ReceiveMessage(ctx, InboundMessage{From: handset, To: tollFree, Body: "hi"}); err != nil || len(res.Replies) != 0 {
		t.Errorf("silent app: %+v, %v; want no replies", res, err)
	}
	if res, err := s.ReceiveMessage(ctx, InboundMessage{From: optedOut, To: longCode, Body: "hi"}); err != nil || len(res.Replies) != 0 || !res.Webhook.Accepted() {
		t.Errorf("opted-out handset: %+v, %v; want no replies", res, err)
	}
}

// TestInboundParams: the webhook parameters of SMS, MMS and WhatsApp
// messages and of calls.
func TestInboundParams(t *testing.T) {
	t.Parallel()
	a := replyApp()
	srv := startApp(t, a)
	cfg := testConfig()
	numberOf(t, &cfg, longCode).SMSURL = srv.URL + "/sms"
	numberOf(t, &cfg, longCode).VoiceURL = srv.URL + "/voice"
	s := newSim(t, cfg)
	ctx := withTimeout(t)
	mmsSID := regexp.MustCompile(`^MM[0-9a-f]{32}$`)
	callSID := regexp.MustCompile(`^CA[0-9a-f]{32}$`)

	tests := []struct {
		name string
		in   InboundMessage
		want map[string]string // "" for a parameter that must be absent
		sid  *regexp.Regexp
	}{
		{"SMS", InboundMessage{From: handset, To: longCode, Body: "héllo ж"}, map[string]string{
			"From": handset, "To": longCode, "Body": "héllo ж", "NumMedia": "0", "NumSegments": "1",
			"SmsStatus": "received", "ApiVersion": "2010-04-01", "AccountSid": acctSID, "WaId": "", "MediaUrl0": "",
		}, messageSIDPattern},
		{"LongSMS", InboundMessage{From: handset, To: longCode, Body: strings.Repeat("a", 161)}, map[string]string{
			"NumSegments": "2",
		}, messageSIDPattern},
		{"MMS", InboundMessage{From: handset, To: longCode, Body: "look", MediaURLs: []string{"https://media.example/1.jpg", "https://media.example/2.jpg"}}, map[string]string{
			"NumMedia": "2", "MediaUrl0": "https://media.example/1.jpg", "MediaUrl1": "https://media.example/2.jpg",
			"MediaContentType0": "image/jpeg", "MediaContentType1": "image/jpeg",
		}, mmsSID},
		{"WhatsApp", InboundMessage{From: "whatsapp:" + handset, To: "whatsapp:" + longCode, Body: "hola", ProfileName: "Ana"}, map[string]string{
			"From": "whatsapp:" + handset, "To": "whatsapp:" + longCode, "WaId": strings.TrimPrefix(handset, "+"),
			"ProfileName": "Ana", "MessageType": "text",
		}, messageSIDPattern},
		{"WhatsAppImage", InboundMessage{From: "whatsapp:" + handset, To: "whatsapp:" + longCode, MediaURLs: []string{"https://media.example/3.jpg"}}, map[string]string{
			"MessageType": "image", "NumMedia": "1", "MediaUrl0": "https://media.example/3.jpg",
		}, mmsSID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.ReceiveMessage(ctx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.sid.MatchString(res.SID) {
				t.Errorf("SID %s does not match %v", res.SID, tt.sid)
			}
			f := lastTo(t, a, "/sms").Form
			for _, k := range []string{"MessageSid", "SmsSid", "SmsMessageSid"} {
				if f.Get(k) != res.SID {
					t.Errorf("%s %q, want %s", k, f.Get(k), res.SID)
				}
			}
			for k, v := range tt.want {
				if v == "" && f.Has(k) {
					t.Errorf("%s %q, want none", k, f.Get(k))
				} else if v != "" && f.Get(k) != v {
					t.Errorf("%s %q, want %q", k, f.Get(k), v)
				}
			}
			// The reply goes back on the same channel.
			if len(res.Replies) == 0 {
				t.Fatalf("no reply")
			}
			m, _ := s.Message(res.Replies[0])
			if m.From != tt.in.To || m.To != tt.in.From {
				t.Errorf("reply from %s to %s, want from %s to %s", m.From, m.To, tt.in.To, tt.in.From)
			}
		})
	}

	t.Run("Call", func(t *testing.T) {
		res, err := s.ReceiveCall(ctx, InboundCall{From: handset, To: longCode})
		if err != nil {
			t.Fatal(err)
		}
		if !callSID.MatchString(res.SID) || res.Webhook == nil || !res.Webhook.Accepted() {
			t.Fatalf("result %+v: want a CA… call whose TwiML was accepted", res)
		}
		f := lastTo(t, a, "/voice").Form
		want := map[string]string{
			"CallSid": res.SID, "AccountSid": acctSID, "From": handset, "To": longCode, "Caller": handset, "Called": longCode,
			"CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01",
		}
		for k, v := range want {
			if f.Get(k) != v {
				t.Errorf("%s %q, want %q", k, f.Get(k), v)
			}
		}
	})

	t.Run("Refused", func(t *testing.T) {
		for _, in := range []InboundMessage{
			{From: handset, To: "+15550000000", Body: "not ours"},
			{From: "whatsapp:" + handset, To: longCode, Body: "mixed channels"},
			{From: "12345", To: longCode, Body: "not a phone number"},
		} {
			var re *RestError
			if _, err := s.ReceiveMessage(ctx, in); !errors.As(err, &re) {
				t.Errorf("ReceiveMessage(%+v): %v, want a RestError", in, err)
			}
		}
		if _, err := s.ReceiveCall(ctx, InboundCall{From: handset, To: otherNum + "0"}); err == nil {
			t.Errorf("call to a number nobody owns: want an error")
		}
	})
}

// TestControlAPI: the /sim/v1 endpoints over HTTP, with Basic auth.
func TestControlAPI(t *testing.T) {
	t.Parallel()
	a := replyApp()
	appSrv := startApp(t, a)
	cfg := testConfig()
	numberOf(t, &cfg, longCode).SMSURL = appSrv.URL + "/sms"
	numberOf(t, &cfg, longCode).VoiceURL = appSrv.URL + "/voice"
	s := newSim(t, cfg)
	srv := serveSim(t, s)
	base := srv.URL + "/sim/v1/Accounts/" + acctSID

	do := func(t *testing.T, method, u, user, pass string, form url.Values) (int, map[string]any) {
		t.Helper()
		var req *http.Request
		var err error
		if method == http.MethodPost {
			req, err = http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, err = http.NewRequestWithContext(t.Context(), method, u, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %d, body not JSON: %v", method, u, resp.StatusCode, err)
		}
		return resp.StatusCode, v
	}

	t.Run("InboundMessage", func(t *testing.T) {
		code, v := do(t, http.MethodPost, base+"/InboundMessages", acctSID, acctToken, url.Values{"From": {handset}, "To": {longCode}, "Body": {"Stop"}})
		if code != http.StatusCreated || v["opt_out"] != "STOP" || !messageSIDPattern.MatchString(v["sid"].(string)) {
			t.Fatalf("%d %v: want 201 with an SM SID and opt_out STOP", code, v)
		}
		wh, _ := v["webhook"].(map[string]any)
		if wh == nil || wh["status"] != float64(200) || wh["url"] != appSrv.URL+"/sms" {
			t.Errorf("webhook %v: want the app's 200", v["webhook"])
		}
		code, v = do(t, http.MethodGet, base+"/OptOuts", acctSID, acctToken, nil)
		if code != http.StatusOK || !slices.Contains(v["opt_outs"].([]any), any(handset)) || !slices.Contains(v["opt_outs"].([]any), any(optedOut)) {
			t.Errorf("opt-outs: %d %v, want %s and %s", code, v, handset, optedOut)
		}
	})
	t.Run("InboundCall", func(t *testing.T) {
		code, v := do(t, http.MethodPost, base+"/InboundCalls", acctSID, oldToken, url.Values{"From": {handset2}, "To": {longCode}})
		if code != http.StatusCreated || !strings.HasPrefix(v["sid"].(string), "CA") {
			t.Fatalf("%d %v: want 201 with a CA SID", code, v)
		}
		if f := lastTo(t, a, "/voice").Form; f.Get("CallSid") != v["sid"] {
			t.Errorf("the app got CallSid %q, want %v", f.Get("CallSid"), v["sid"])
		}
	})
	t.Run("ClientNotification", func(t *testing.T) {
		code, v := do(t, http.MethodPost, base+"/ClientNotifications", acctSID, acctToken, url.Values{"Url": {appSrv.URL + "/notify"}, "From": {handset}, "To": {"client:alice"}})
		if code != http.StatusCreated || !strings.HasPrefix(v["sid"].(string), "WB") {
			t.Fatalf("%d %v: want 201 with a WB SID", code, v)
		}
		r := lastTo(t, a, "/notify")
		var body map[string]string
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body["twi_message_id"] != v["sid"] || body["twi_to"] != "client:alice" || body["twi_from"] != handset ||
			body["twi_account_sid"] != acctSID || body["twi_message_type"] != "twilio.voice.call" ||
			!strings.HasPrefix(body["twi_call_sid"], "CA") || !strings.HasPrefix(body["twi_bridge_token"], "BT") {
			t.Errorf("notification %v", body)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		tests := []struct {
			name, method, url, user, pass string
			form                          url.Values
			status, code                  int
		}{
			{"NoAuth", http.MethodGet, base + "/OptOuts", "", "", nil, 401, 20003},
			{"WrongToken", http.MethodGet, base + "/OptOuts", acctSID, otherTok, nil, 401, 20003},
			{"OtherAccountsPath", http.MethodGet, base + "/OptOuts", otherSID, otherTok, nil, 401, 20003},
			{"NumberOfAnotherAccount", http.MethodPost, base + "/InboundMessages", acctSID, acctToken, url.Values{"From": {handset}, "To": {otherNum}, "Body": {"x"}}, 404, 21211},
			{"CallToAnotherAccount", http.MethodPost, base + "/InboundCalls", acctSID, acctToken, url.Values{"From": {handset}, "To": {otherNum}}, 404, 21211},
			{"BadFrom", http.MethodPost, base + "/InboundMessages", acctSID, acctToken, url.Values{"From": {"x"}, "To": {longCode}, "Body": {"x"}}, 400, 21212},
			{"BadNotificationURL", http.MethodPost, base + "/ClientNotifications", acctSID, acctToken, url.Values{"Url": {"ftp://x"}}, 400, 20001},
			{"UnknownPath", http.MethodGet, srv.URL + "/sim/v1/Nothing", acctSID, acctToken, nil, 404, 20404},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, v := do(t, tt.method, tt.url, tt.user, tt.pass, tt.form)
				if code != tt.status || v["code"] != float64(tt.code) || v["status"] != float64(tt.status) {
					t.Errorf("%d %v, want %d with code %d", code, v, tt.status, tt.code)
				}
			})
		}
	})
}
