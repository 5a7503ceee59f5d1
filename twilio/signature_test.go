package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"

	twclient "github.com/twilio/twilio-go/client"
)

// Test vectors from Twilio's documentation and SDK test suites.
const (
	vecToken      = "12345"
	vecURL        = "https://mycompany.com/myapp.php?foo=1&bar=2"
	vecURL443     = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
	vecURLHTTP80  = "http://mycompany.com:80/myapp.php?foo=1&bar=2"
	vecURLHTTP    = "http://mycompany.com/myapp.php?foo=1&bar=2"
	vecBody       = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"
	vecSig        = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
	vecSig443     = "kvajT1Ptam85bY51eRf/AJRuM3w="
	vecSigHTTP80  = "0ZXoZLH/DfblKGATFgpif+LLRf4="
	vecJSONBody   = `{"property": "value", "boolean": true}`
	vecJSONHash   = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	vecJSONSig    = "a9nBmqA0ju/hNViExpshrM61xv4="
	formType      = "application/x-www-form-urlencoded"
	voiceFormType = "application/x-www-form-urlencoded; charset=UTF-8"
	jsonType      = "application/json"
)

var vecParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"},
	"Caller":  {"+14158675309"},
	"Digits":  {"1234"},
	"From":    {"+14158675309"},
	"To":      {"+18005551212"},
}

// hmacBase64 computes a signature from an already assembled string, without
// any of the package's own logic.
func hmacBase64(token, s string) string {
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSignatureVectors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		url  string
		want string
	}{
		{name: "AsGiven", url: vecURL, want: vecSig},
		{name: "HTTPSPort443", url: vecURL443, want: vecSig443},
		{name: "HTTPPort80", url: vecURLHTTP80, want: vecSigHTTP80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			if got := Signature(vecToken, tt.url, vecParams); got != tt.want {
				t.Errorf("Signature(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

func TestSignatureRepeatedKeys(t *testing.T) {
	t.Parallel()

	params := url.Values{
		"To":       {"+1"},
		"MediaUrl": {"b", "a", "b"},
		"A":        {""},
	}
	// Keys in byte order, each distinct value in byte order, once.
	want := hmacBase64(vecToken, vecURL+"A"+"MediaUrla"+"MediaUrlb"+"To+1")
	if got := Signature(vecToken, vecURL, params); got != want {
		t.Errorf("Signature = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(params["MediaUrl"], []string{"b", "a", "b"}) {
		t.Errorf("Signature modified its params: %v", params["MediaUrl"])
	}
}

func TestSignatureByteOrder(t *testing.T) {
	t.Parallel()

	// Upper case sorts before lower case; a prefix before its extensions.
	params := url.Values{"b": {"1"}, "B": {"2"}, "Ba": {"3"}, "a": {"4"}}
	want := hmacBase64(vecToken, vecURL+"B2"+"Ba3"+"a4"+"b1")
	if got := Signature(vecToken, vecURL, params); got != want {
		t.Errorf("Signature = %q, want %q", got, want)
	}
}

func TestSignRequest(t *testing.T) {
	t.Parallel()

	jsonSig := func(u string) string { return hmacBase64(vecToken, u) }
	tests := []struct {
		name        string
		url         string
		contentType string
		body        string
		wantURL     string
		wantSig     string
	}{
		{name: "FormVector", url: vecURL, contentType: formType, body: vecBody, wantURL: vecURL, wantSig: vecSig},
		{name: "FormCharset", url: vecURL, contentType: voiceFormType, body: vecBody, wantURL: vecURL, wantSig: vecSig},
		{name: "FormUpperCase", url: vecURL, contentType: "Application/X-WWW-Form-URLEncoded", body: vecBody, wantURL: vecURL, wantSig: vecSig},
		{
			name: "JSONVector", url: vecURL, contentType: jsonType, body: vecJSONBody,
			wantURL: vecURL + "&bodySHA256=" + vecJSONHash, wantSig: vecJSONSig,
		},
		{
			name: "JSONCharset", url: vecURL, contentType: "application/json; charset=utf-8", body: vecJSONBody,
			wantURL: vecURL + "&bodySHA256=" + vecJSONHash, wantSig: vecJSONSig,
		},
		{
			name: "JSONNoQuery", url: "https://example.com/notify", contentType: jsonType, body: vecJSONBody,
			wantURL: "https://example.com/notify?bodySHA256=" + vecJSONHash,
			wantSig: jsonSig("https://example.com/notify?bodySHA256=" + vecJSONHash),
		},
		{
			name: "JSONEmptyQuery", url: "https://example.com/notify?", contentType: jsonType, body: vecJSONBody,
			wantURL: "https://example.com/notify?bodySHA256=" + vecJSONHash,
			wantSig: jsonSig("https://example.com/notify?bodySHA256=" + vecJSONHash),
		},
		{
			name: "JSONTrailingAmpersand", url: "https://example.com/notify?a=1&", contentType: jsonType, body: vecJSONBody,
			wantURL: "https://example.com/notify?a=1&bodySHA256=" + vecJSONHash,
			wantSig: jsonSig("https://example.com/notify?a=1&bodySHA256=" + vecJSONHash),
		},
		{
			name: "JSONRawQueryKept", url: "https://example.com/n?q=It%27s+a%20b", contentType: jsonType, body: vecJSONBody,
			wantURL: "https://example.com/n?q=It%27s+a%20b&bodySHA256=" + vecJSONHash,
			wantSig: jsonSig("https://example.com/n?q=It%27s+a%20b&bodySHA256=" + vecJSONHash),
		},
		{
			name: "JSONHashAlreadyPresent", url: "https://example.com/n?bodySHA256=abc", contentType: jsonType, body: vecJSONBody,
			wantURL: "https://example.com/n?bodySHA256=abc", wantSig: jsonSig("https://example.com/n?bodySHA256=abc"),
		},
		{
			name: "FormWithHashInURLSignsURLAlone", url: "https://example.com/n?bodySHA256=abc", contentType: formType, body: "a=1",
			wantURL: "https://example.com/n?bodySHA256=abc", wantSig: jsonSig("https://example.com/n?bodySHA256=abc"),
		},
		{name: "GET", url: vecURL, contentType: "", body: "", wantURL: vecURL, wantSig: hmacBase64(vecToken, vecURL)},
		{name: "EmptyForm", url: vecURL, contentType: formType, body: "", wantURL: vecURL, wantSig: hmacBase64(vecToken, vecURL)},
		{name: "EmptyJSON", url: vecURL, contentType: jsonType, body: "", wantURL: vecURL, wantSig: hmacBase64(vecToken, vecURL)},
		{name: "OtherType", url: vecURL, contentType: "text/plain", body: "a=1", wantURL: vecURL, wantSig: hmacBase64(vecToken, vecURL)},
		{name: "FragmentStripped", url: vecURL + "#rc=2&rp=all", contentType: formType, body: vecBody, wantURL: vecURL, wantSig: vecSig},
		{
			name: "FragmentStrippedBeforeJSONHash", url: vecURL + "#ct=1000", contentType: jsonType, body: vecJSONBody,
			wantURL: vecURL + "&bodySHA256=" + vecJSONHash, wantSig: vecJSONSig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			gotURL, gotSig, err := SignRequest(vecToken, tt.url, tt.contentType, []byte(tt.body))
			if err != nil {
				t.Fatalf("SignRequest: %v", err)
			}
			if gotURL != tt.wantURL {
				t.Errorf("signed URL = %q, want %q", gotURL, tt.wantURL)
			}
			if gotSig != tt.wantSig {
				t.Errorf("signature = %q, want %q", gotSig, tt.wantSig)
			}
		})
	}
}

func TestSignRequestMalformedForm(t *testing.T) {
	t.Parallel()

	_, _, err := SignRequest(vecToken, vecURL, formType, []byte("a=%zz"))
	if !errors.Is(err, ErrMalformedForm) {
		t.Fatalf("SignRequest error = %v, want ErrMalformedForm", err)
	}
}

func TestValidateRequest(t *testing.T) {
	t.Parallel()

	const (
		quotedURL     = "https://example.com/sms?Body=It%27s"
		quotedURL443  = "https://example.com:443/sms?Body=It%27s"
		jsonURL       = vecURL + "&bodySHA256=" + vecJSONHash
		repeatedBody  = "To=%2B1&MediaUrl=b&MediaUrl=a&MediaUrl=b"
		repeatedInput = vecURL + "MediaUrla" + "MediaUrlb" + "To+1"
	)
	upperJSONURL := vecURL + "&bodySHA256=" + strings.ToUpper(vecJSONHash)

	tests := []struct {
		name        string
		tokens      []string
		url         string
		contentType string
		body        string
		signature   string
		wantErr     error
	}{
		{name: "FormVector", url: vecURL, contentType: formType, body: vecBody, signature: vecSig},
		{name: "FormCharset", url: vecURL, contentType: voiceFormType, body: vecBody, signature: vecSig},
		{name: "PortAddedHTTPS", url: vecURL, contentType: formType, body: vecBody, signature: vecSig443},
		{name: "PortRemovedHTTPS", url: vecURL443, contentType: formType, body: vecBody, signature: vecSig},
		{name: "PortAsGivenHTTPS", url: vecURL443, contentType: formType, body: vecBody, signature: vecSig443},
		{name: "PortAddedHTTP", url: vecURLHTTP, contentType: formType, body: vecBody, signature: vecSigHTTP80},
		{name: "PortRemovedHTTP", url: vecURLHTTP80, contentType: formType, body: vecBody, signature: hmacBase64(vecToken, vecURLHTTP+paramString(vecParams))},
		{name: "WrongDefaultPort", url: vecURL, contentType: formType, body: vecBody, signature: Signature(vecToken, "https://mycompany.com:80/myapp.php?foo=1&bar=2", vecParams), wantErr: ErrBadSignature},
		{name: "OtherPortRemoved", url: "https://mycompany.com:8443/myapp.php?foo=1&bar=2", contentType: formType, body: vecBody, signature: vecSig},
		{name: "SecondToken", tokens: []string{"old", vecToken}, url: vecURL, contentType: formType, body: vecBody, signature: vecSig},
		{name: "FirstToken", tokens: []string{vecToken, "new"}, url: vecURL, contentType: formType, body: vecBody, signature: vecSig},
		{name: "EmptyTokenSkipped", tokens: []string{"", vecToken}, url: vecURL, contentType: formType, body: vecBody, signature: vecSig},
		{name: "WrongToken", tokens: []string{"54321"}, url: vecURL, contentType: formType, body: vecBody, signature: vecSig, wantErr: ErrBadSignature},
		{name: "NoTokens", tokens: []string{}, url: vecURL, contentType: formType, body: vecBody, signature: vecSig, wantErr: ErrBadSignature},
		{name: "OnlyEmptyToken", tokens: []string{""}, url: vecURL, contentType: formType, body: vecBody, signature: hmacBase64("", vecURL+paramString(vecParams)), wantErr: ErrBadSignature},
		{name: "MissingSignature", url: vecURL, contentType: formType, body: vecBody, signature: "", wantErr: ErrMissingSignature},
		{name: "TamperedParam", url: vecURL, contentType: formType, body: strings.Replace(vecBody, "Digits=1234", "Digits=1235", 1), signature: vecSig, wantErr: ErrBadSignature},
		{name: "AddedParam", url: vecURL, contentType: formType, body: vecBody + "&Extra=1", signature: vecSig, wantErr: ErrBadSignature},
		{name: "TamperedURL", url: strings.Replace(vecURL, "foo=1", "foo=2", 1), contentType: formType, body: vecBody, signature: vecSig, wantErr: ErrBadSignature},
		{name: "ParamOrderIrrelevant", url: vecURL, contentType: formType, body: "To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE", signature: vecSig},
		{name: "MalformedForm", url: vecURL, contentType: formType, body: vecBody + "&x=%zz", signature: vecSig, wantErr: ErrMalformedForm},
		{name: "FormAsOtherTypeIsNotCovered", url: vecURL, contentType: "text/plain", body: vecBody, signature: hmacBase64(vecToken, vecURL), wantErr: ErrUnsignedContent},
		{name: "RepeatedKeys", url: vecURL, contentType: formType, body: repeatedBody, signature: hmacBase64(vecToken, repeatedInput)},
		{name: "RepeatedKeysFirstValueOnly", url: vecURL, contentType: formType, body: repeatedBody, signature: hmacBase64(vecToken, vecURL+"MediaUrlb"+"To+1"), wantErr: ErrBadSignature},
		{name: "JSONVector", url: jsonURL, contentType: jsonType, body: vecJSONBody, signature: vecJSONSig},
		{name: "JSONUpperCaseHash", url: upperJSONURL, contentType: jsonType, body: vecJSONBody, signature: hmacBase64(vecToken, upperJSONURL)},
		{name: "JSONPortAdded", url: jsonURL, contentType: jsonType, body: vecJSONBody, signature: hmacBase64(vecToken, strings.Replace(jsonURL, ".com/", ".com:443/", 1))},
		{name: "JSONTamperedBody", url: jsonURL, contentType: jsonType, body: `{"property": "value", "boolean": false}`, signature: vecJSONSig, wantErr: ErrBodyHashMismatch},
		{name: "JSONForged", url: jsonURL, contentType: jsonType, body: `{"property": "forged"}`, signature: hmacBase64("attacker", jsonURL), wantErr: ErrBadSignature},
		{name: "JSONWithoutHashInURL", url: vecURL, contentType: jsonType, body: vecJSONBody, signature: hmacBase64(vecToken, vecURL), wantErr: ErrUnsignedContent},
		{name: "XMLWithoutHashInURL", url: vecURL, contentType: "text/xml", body: "<a/>", signature: hmacBase64(vecToken, vecURL), wantErr: ErrUnsignedContent},
		{name: "NoContentTypeBody", url: vecURL, body: vecBody, signature: hmacBase64(vecToken, vecURL), wantErr: ErrUnsignedContent},
		{name: "FormWithHashInURL", url: jsonURL, contentType: formType, body: vecJSONBody, signature: hmacBase64(vecToken, jsonURL)},
		{name: "JSONBadHexHash", url: vecURL + "&bodySHA256=zz", contentType: jsonType, body: vecJSONBody, signature: hmacBase64(vecToken, vecURL+"&bodySHA256=zz"), wantErr: ErrBodyHashMismatch},
		{name: "GET", url: vecURL, signature: hmacBase64(vecToken, vecURL)},
		{name: "GETPortAdded", url: vecURL, signature: hmacBase64(vecToken, vecURL443)},
		{name: "GETWithFormSignature", url: vecURL, signature: vecSig, wantErr: ErrBadSignature},
		{name: "RawQueryKept", url: quotedURL, signature: hmacBase64(vecToken, quotedURL)},
		{name: "RawQueryKeptPortAdded", url: quotedURL, signature: hmacBase64(vecToken, quotedURL443)},
		{name: "RawQueryKeptPortRemoved", url: quotedURL443, signature: hmacBase64(vecToken, quotedURL)},
		{name: "RawQueryNotDecoded", url: quotedURL, signature: hmacBase64(vecToken, "https://example.com/sms?Body=It's"), wantErr: ErrBadSignature},
		{name: "FragmentIgnored", url: vecURL + "#rc=3&rp=all", contentType: formType, body: vecBody, signature: vecSig},
		{name: "UserInfoPortAdded", url: "https://u:p@example.com/x", signature: hmacBase64(vecToken, "https://u:p@example.com:443/x")},
		{name: "UserInfoPortRemoved", url: "https://u:p@example.com:8443/x", signature: hmacBase64(vecToken, "https://u:p@example.com/x")},
		{name: "IPv6PortRemoved", url: "http://[::1]:8080/x", signature: hmacBase64(vecToken, "http://[::1]/x")},
		{name: "IPv6PortAdded", url: "http://[::1]/x", signature: hmacBase64(vecToken, "http://[::1]:80/x")},
		{name: "NotAURL", url: "not a url", signature: hmacBase64(vecToken, "not a url")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			tokens := tt.tokens
			if tokens == nil {
				tokens = []string{vecToken}
			}
			err := ValidateRequest(tokens, tt.url, tt.contentType, []byte(tt.body), tt.signature)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ValidateRequest: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ValidateRequest error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestURLVariants(t *testing.T) {
	t.Parallel()

	tests := []struct {
		url  string
		want []string
	}{
		{url: "https://a.com/p?q=1", want: []string{"https://a.com/p?q=1", "https://a.com:443/p?q=1"}},
		{url: "HTTPS://a.com/p", want: []string{"HTTPS://a.com/p", "HTTPS://a.com:443/p"}},
		{url: "http://a.com", want: []string{"http://a.com", "http://a.com:80"}},
		{url: "http://a.com?x=http://b:1/", want: []string{"http://a.com?x=http://b:1/", "http://a.com:80?x=http://b:1/"}},
		{url: "https://a.com:443/p", want: []string{"https://a.com:443/p", "https://a.com/p"}},
		{url: "https://a.com:/p", want: []string{"https://a.com:/p", "https://a.com/p"}},
		{url: "https://u:p@a.com/p", want: []string{"https://u:p@a.com/p", "https://u:p@a.com:443/p"}},
		{url: "https://u:p@a.com:1/p@x", want: []string{"https://u:p@a.com:1/p@x", "https://u:p@a.com/p@x"}},
		{url: "https://[::1]:1/", want: []string{"https://[::1]:1/", "https://[::1]/"}},
		{url: "https://[::1]/", want: []string{"https://[::1]/", "https://[::1]:443/"}},
		{url: "https://[::1/", want: []string{"https://[::1/"}},
		{url: "https://[::1]x/", want: []string{"https://[::1]x/"}},
		{url: "ftp://a.com/p", want: []string{"ftp://a.com/p"}},
		{url: "ftp://a.com:21/p", want: []string{"ftp://a.com:21/p", "ftp://a.com/p"}},
		{url: "https:///p", want: []string{"https:///p"}},
		{url: "https://:443/p", want: []string{"https://:443/p"}},
		{url: "/relative?q=1", want: []string{"/relative?q=1"}},
		{url: "/relative?u=http://b:1/", want: []string{"/relative?u=http://b:1/"}},
		{url: "1http://a.com/", want: []string{"1http://a.com/"}},
		{url: "svn+ssh://a.com:22/", want: []string{"svn+ssh://a.com:22/", "svn+ssh://a.com/"}},
		{url: "", want: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()

			if got := urlVariants(tt.url); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("urlVariants(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

// TestRepeatedKeysTwilioGoDisagrees shows the request twilio-go wrongly
// rejects: a form that repeats a key, signed the way Twilio signs it.
func TestRepeatedKeysTwilioGoDisagrees(t *testing.T) {
	t.Parallel()

	body := []byte("Body=hi&MediaUrl=https%3A%2F%2Fm%2F2&MediaUrl=https%3A%2F%2Fm%2F1")
	sig := hmacBase64(vecToken, vecURL+"Bodyhi"+"MediaUrlhttps://m/1"+"MediaUrlhttps://m/2")

	if err := ValidateRequest([]string{vecToken}, vecURL, formType, body, sig); err != nil {
		t.Errorf("ValidateRequest: %v", err)
	}
	rv := twclient.NewRequestValidator(vecToken)
	if rv.ValidateBody(vecURL, body, sig) {
		t.Errorf("twilio-go accepted the repeated-key signature; its first-value-only behaviour has changed, revisit the comment on Signature")
	}
}

// TestSignatureMatchesTwilioGo cross-checks SignRequest against twilio-go's
// validator for single-valued parameters, where it is correct.
func TestSignatureMatchesTwilioGo(t *testing.T) {
	t.Parallel()

	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcXYZ019 +-_.~!*'()&=%/?:@,$é✓"
	randString := func(maxLen int) string {
		runes := []rune(alphabet)
		n := rng.IntN(maxLen + 1)
		var b strings.Builder
		for range n {
			b.WriteRune(runes[rng.IntN(len(runes))])
		}
		return b.String()
	}
	bases := []string{
		"https://example.com/sms",
		"https://example.com/voice?route=a&x=1",
		"http://example.com/status",
		"https://example.com:8443/p",
		"http://127.0.0.1:8080/hook?q=1",
	}

	for i := range 200 {
		token := fmt.Sprintf("tok%x", rng.Uint64())
		base := bases[i%len(bases)]
		params := url.Values{}
		for range rng.IntN(8) {
			params.Set(randString(6)+"K", randString(12))
		}
		body := []byte(params.Encode())
		jsonBody := fmt.Appendf(nil, `{"twi_message_id":%q}`, randString(20))
		rv := twclient.NewRequestValidator(token)

		t.Run(fmt.Sprintf("Form%d", i), func(t *testing.T) {
			t.Parallel()

			signedURL, sig, err := SignRequest(token, base, formType, body)
			if err != nil {
				t.Fatalf("SignRequest: %v", err)
			}
			if !rv.ValidateBody(signedURL, body, sig) {
				t.Errorf("twilio-go rejects %q over %q with body %q", sig, signedURL, body)
			}
		})
		t.Run(fmt.Sprintf("GET%d", i), func(t *testing.T) {
			t.Parallel()

			getURL := base + "?" + params.Encode()
			if strings.Contains(base, "?") {
				getURL = base + "&" + params.Encode()
			}
			signedURL, sig, err := SignRequest(token, getURL, "", nil)
			if err != nil {
				t.Fatalf("SignRequest: %v", err)
			}
			if !rv.Validate(signedURL, map[string]string{}, sig) {
				t.Errorf("twilio-go rejects %q over %q", sig, signedURL)
			}
		})
		t.Run(fmt.Sprintf("JSON%d", i), func(t *testing.T) {
			t.Parallel()

			signedURL, sig, err := SignRequest(token, base, jsonType, jsonBody)
			if err != nil {
				t.Fatalf("SignRequest: %v", err)
			}
			if !rv.ValidateBody(signedURL, jsonBody, sig) {
				t.Errorf("twilio-go rejects %q over %q with body %q", sig, signedURL, jsonBody)
			}
		})
	}
}

func FuzzValidateRequest(f *testing.F) {
	f.Add(vecToken, vecURL, formType, []byte(vecBody))
	f.Add(vecToken, vecURL, jsonType, []byte(vecJSONBody))
	f.Add(vecToken, vecURL+"#rc=2", voiceFormType, []byte("a=1&a=2&b"))
	f.Add("t", "http://[::1]:80/x?It%27s", "", []byte{})
	f.Add("t", "https://u:p@h:1/?bodySHA256=00", jsonType, []byte("{}"))
	f.Add("t", "https://h/?x=%zz", formType, []byte("a=%zz"))
	f.Fuzz(func(t *testing.T, token, rawURL, contentType string, body []byte) {
		signedURL, sig, err := SignRequest(token, rawURL, contentType, body)
		if err != nil {
			if !errors.Is(err, ErrMalformedForm) {
				t.Fatalf("SignRequest error %v does not wrap ErrMalformedForm", err)
			}
			return
		}

		err = ValidateRequest([]string{token}, signedURL, contentType, body, sig)
		switch {
		case token == "":
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("empty token: ValidateRequest error = %v, want ErrBadSignature", err)
			}
		case hasBodyHash(rawURL):
			// The caller's own bodySHA256 is signed as is; it may be wrong,
			// but the signature itself must hold.
			if err != nil && !errors.Is(err, ErrBodyHashMismatch) {
				t.Fatalf("ValidateRequest(%q, %q, %q) = %v", signedURL, contentType, body, err)
			}
		default:
			if err != nil {
				t.Fatalf("ValidateRequest(%q, %q, %q) = %v", signedURL, contentType, body, err)
			}
		}

		// Another token never validates the same request.
		if err := ValidateRequest([]string{token + "x"}, signedURL, contentType, body, sig); err == nil {
			t.Fatalf("signature by %q validated with %q", token, token+"x")
		}
	})
}

// hasBodyHash reports whether u's query, before any fragment, already has a
// bodySHA256 parameter under any spelling that unescapes to it.
func hasBodyHash(u string) bool {
	u, _, _ = strings.Cut(u, "#")
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		return false
	}
	for _, pair := range strings.Split(q, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if k == "bodySHA256" {
			return true
		}
		if uk, err := url.QueryUnescape(k); err == nil && uk == "bodySHA256" {
			return true
		}
	}
	return false
}

// sha256Hex is used to build JSON vectors by hand.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestJSONVectorHash(t *testing.T) {
	t.Parallel()

	if got := sha256Hex([]byte(vecJSONBody)); got != vecJSONHash {
		t.Fatalf("sha256(%q) = %s, want %s", vecJSONBody, got, vecJSONHash)
	}
}

func TestVerifyReturnsTheSignedForm(t *testing.T) {
	t.Parallel()
	const token, u = "12345", "https://mycompany.com/myapp.php?foo=1&bar=2"
	formBody := []byte("To=%2B18005551212&Digits=1234&Digits=5")
	_, sig, err := SignRequest(token, u, formType, formBody)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify([]string{token}, Request{Method: "POST", URL: u, ContentType: formType, Body: formBody}, sig)
	if err != nil {
		t.Fatal(err)
	}
	if v.Form.Get("To") != "+18005551212" || len(v.Form["Digits"]) != 2 {
		t.Errorf("form = %v", v.Form)
	}
	if v, err := Verify([]string{token}, Request{Method: "POST", URL: u, ContentType: formType, Body: formBody}, "forged"); err == nil || v != nil {
		t.Errorf("forged signature: %v, err %v; want nothing and an error", v, err)
	}
	jsonBody := []byte(`{"a":1}`)
	signedURL, sig, err := SignRequest(token, u, jsonType, jsonBody)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify([]string{token}, Request{Method: "POST", URL: signedURL, ContentType: jsonType, Body: jsonBody}, sig); err != nil || v.Form != nil {
		t.Errorf("JSON body: %v, err %v; want no form and no error", v, err)
	}
}

// A GET is signed over its URL alone, so a body sent with it was never
// signed: one captured GET signature must not vouch for parameters added
// in a body (they would be signed again for the app).
func TestVerifyRefusesUnsignedContent(t *testing.T) {
	t.Parallel()
	const token = "12345"
	urlSig := hmacBase64(token, vecURL)
	tests := []struct {
		name    string
		req     Request
		sig     string
		wantErr error
	}{
		{"GETWithoutBody", Request{Method: "GET", URL: vecURL}, urlSig, nil},
		{"GETWithFormBody", Request{Method: "GET", URL: vecURL, ContentType: formType, Body: []byte("Body=forged")}, urlSig, ErrUnsignedContent},
		{"GETWithJSONBody", Request{Method: "GET", URL: vecURL, ContentType: jsonType, Body: []byte(`{"a":1}`)}, urlSig, ErrUnsignedContent},
		{"POSTEmptyBody", Request{Method: "POST", URL: vecURL, ContentType: formType}, urlSig, nil},
		{"POSTJSONWithoutHash", Request{Method: "POST", URL: vecURL, ContentType: jsonType, Body: []byte(`{"Body":"forged"}`)}, urlSig, ErrUnsignedContent},
		{"POSTOctets", Request{Method: "POST", URL: vecURL, ContentType: "application/octet-stream", Body: []byte("x")}, urlSig, ErrUnsignedContent},
		{"GETWithHashAndBody", Request{Method: "GET", URL: vecURL + "&bodySHA256=" + vecJSONHash, ContentType: jsonType, Body: []byte(vecJSONBody)}, hmacBase64(token, vecURL+"&bodySHA256="+vecJSONHash), ErrUnsignedContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Verify([]string{token}, tt.req, tt.sig)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if (Covered(tt.req) == nil) != (tt.wantErr == nil) {
				t.Errorf("Covered = %v, Verify = %v: they disagree", Covered(tt.req), err)
			}
		})
	}
}

// The digest is what deduplication keys on: the same for every copy of
// one signed content whatever the unsigned parts say, different for any
// change to the signed content.
func TestVerifyDigest(t *testing.T) {
	t.Parallel()
	verify := func(t *testing.T, u, body, sig string) [sha256.Size]byte {
		t.Helper()
		v, err := Verify([]string{vecToken}, Request{Method: "POST", URL: u, ContentType: formType, Body: []byte(body)}, sig)
		if err != nil {
			t.Fatalf("Verify(%s, %s): %v", u, body, err)
		}
		return v.Digest
	}
	base := verify(t, vecURL, vecBody, vecSig)
	reordered := "To=%2B18005551212&From=%2b14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE&&"
	for name, got := range map[string][sha256.Size]byte{
		"PortAdded":       verify(t, vecURL443, vecBody, vecSig),
		"Reordered":       verify(t, vecURL, reordered, vecSig),
		"FragmentIgnored": verify(t, vecURL+"#rc=2", vecBody, vecSig),
		"PairRepeated":    verify(t, vecURL, vecBody+"&Digits=1234", vecSig),
	} {
		if got != base {
			t.Errorf("%s: digest differs from the same signed content's", name)
		}
	}
	if got := verify(t, vecURL443, vecBody, vecSig443); got == base {
		t.Error("a signature over another URL spelling gave the same digest")
	}
	other := strings.Replace(vecBody, "Digits=1234", "Digits=1235", 1)
	if got := verify(t, vecURL, other, Signature(vecToken, vecURL, mustParseForm(t, other))); got == base {
		t.Error("different parameters gave the same digest")
	}
}

func mustParseForm(t *testing.T, body string) url.Values {
	t.Helper()
	f, err := ParseForm([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
