package console

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard"
)

func TestIndentXML(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"twiml", `<?xml version="1.0" encoding="UTF-8"?><Response><Message><Body>Hi</Body></Message></Response>`,
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n  <Message>\n    <Body>Hi</Body>\n  </Message>\n</Response>"},
		{"already indented", "<Response>\n    <Say>Hello</Say>\n\n</Response>\n", "<Response>\n  <Say>Hello</Say>\n</Response>"},
		{"empty elements and attributes", `<Response><Dial timeout="10" action="/a?x=1&amp;y=&quot;2&quot;"><Number>+1</Number></Dial><Hangup/></Response>`,
			"<Response>\n  <Dial timeout=\"10\" action=\"/a?x=1&amp;y=&quot;2&quot;\">\n    <Number>+1</Number>\n  </Dial>\n  <Hangup/>\n</Response>"},
		{"prefixes kept", `<a:Root xmlns:a="urn:x"><a:Item a:k="v">t</a:Item></a:Root>`,
			"<a:Root xmlns:a=\"urn:x\">\n  <a:Item a:k=\"v\">t</a:Item>\n</a:Root>"},
		{"mixed content and comments", `<R>text<!-- note --><B>x</B>tail</R>`,
			"<R>\n  text\n  <!-- note -->\n  <B>x</B>\n  tail\n</R>"},
		{"escaped text", `<Say>a &lt; b &amp; c</Say>`, "<Say>a &lt; b &amp; c</Say>"},
	} {
		got, err := indentXML([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v\n%s\nwant\n%s", tc.name, err, got, tc.want)
		}
	}
	for _, bad := range []string{"<Response><Say>", "<a></b>", "</a>", "<a>&bogus;</a>", strings.Repeat("<a>", maxXMLDepth+1) + strings.Repeat("</a>", maxXMLDepth+1)} {
		if got, err := indentXML([]byte(bad)); err == nil {
			t.Errorf("%q: no error, got %q", bad, got)
		}
	}
}

func TestViewBody(t *testing.T) {
	t.Parallel()
	names := func(fs []field) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name+"="+f.Value)
		}
		return out
	}
	for _, tc := range []struct {
		name, ct, body string
		redact         bool
		format         string
		fields         []string
		raw            string
	}{
		{"empty", formType, "", false, "empty", nil, ""},
		{"form keeps its order", formType, "To=%2B1&From=%2B2&Body=a+b%26c&Bad=%zz&=x", false, "form",
			[]string{"To=+1", "From=+2", "Body=a b&c", "Bad=%zz", "=x"}, "To=%2B1&From=%2B2&Body=a+b%26c&Bad=%zz&=x"},
		{"json object", "application/json; charset=utf-8", `{"b":1,"a":"x"}`, false, "json", []string{"b=1", "a=x"}, `{"b":1,"a":"x"}`},
		{"json without a type", "", `{"a":true}`, false, "json", []string{"a=true"}, `{"a":true}`},
		{"text", "text/plain", "hello", false, "text", nil, "hello"},
		{"binary", "application/octet-stream", "\xff\xfe\x00", false, "binary", nil, "3 bytes, not text"},
		{"redacted form keeps names", formType, "From=%2B15550001111&Body=secret", true, "redacted",
			[]string{"From=" + switchboard.Redacted, "Body=" + switchboard.Redacted}, switchboard.Redacted},
		{"redacted json hides numbered keys", "application/json", `{"+15550001111":"x"}`, true, "redacted",
			[]string{switchboard.Redacted + "=" + switchboard.Redacted}, switchboard.Redacted},
		{"redacted xml", "text/xml", "<Response><Message>secret</Message></Response>", true, "redacted", nil, switchboard.Redacted},
	} {
		v := viewBody(tc.ct, []byte(tc.body), tc.redact)
		if v.Format != tc.format || !slices.Equal(names(v.Fields), tc.fields) || v.Raw != tc.raw {
			t.Errorf("%s: %+v", tc.name, v)
		}
		if tc.redact && (strings.Contains(v.Pretty, "secret") || strings.Contains(v.Raw, "secret")) {
			t.Errorf("%s: leaks", tc.name)
		}
	}
	big := viewBody("text/plain", []byte(strings.Repeat("x", maxShownBody+10)), false)
	if !big.Cut || len(big.Raw) != maxShownBody || big.Size != maxShownBody+10 {
		t.Errorf("big body: cut %v, %d of %d shown", big.Cut, len(big.Raw), big.Size)
	}
	many := viewBody(formType, []byte(strings.Repeat("a=1&", maxBodyFields+5)), false)
	if len(many.Fields) != maxBodyFields+1 {
		t.Errorf("%d fields shown of a form with more than %d", len(many.Fields), maxBodyFields)
	}
}
