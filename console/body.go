package console

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
)

// Bounds of what a page shows of a body: the first maxShownBody bytes,
// and a readable form only of a body no longer than that.
const (
	maxShownBody  = 256 << 10
	maxXMLTokens  = 20000
	maxXMLDepth   = 64
	maxBodyFields = 500
)

// bodyView is a body as a page shows it: as a table of fields (a form, a
// JSON object), re-indented (XML, other JSON), and raw.
type bodyView struct {
	// Format is empty, form, json, xml, text, binary or redacted.
	Format string
	Fields []field
	Pretty string
	Raw    string
	Size   int
	Cut    bool // Raw holds only the first maxShownBody bytes
}

type field struct{ Name, Value string }

// formType is the media type of Twilio's webhooks.
const formType = "application/x-www-form-urlencoded"

// viewBody renders a body of the given Content-Type. Redacted, a form or a
// JSON object keeps its field names, every value hidden; anything else is
// hidden whole.
func viewBody(contentType string, body []byte, redact bool) bodyView {
	v := bodyView{Size: len(body)}
	if len(body) == 0 {
		v.Format = "empty"
		return v
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	shown := body
	if len(shown) > maxShownBody {
		shown, v.Cut = shown[:maxShownBody], true
	}
	switch {
	case mt == formType:
		v.Format = "form"
		v.Fields = formFields(string(shown))
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || (mt == "" || mt == "text/plain") && json.Valid(trimmed):
		v.Format = "json"
		if !v.Cut {
			v.Fields = jsonFields(trimmed)
			if v.Fields == nil && !redact {
				var b bytes.Buffer
				if json.Indent(&b, trimmed, "", "  ") == nil {
					v.Pretty = b.String()
				}
			}
		}
	case strings.HasSuffix(mt, "xml") || bytes.HasPrefix(trimmed, []byte("<?xml")) || bytes.HasPrefix(trimmed, []byte("<Response")):
		v.Format = "xml"
		if !v.Cut && !redact {
			if pretty, err := indentXML(body); err == nil {
				v.Pretty = pretty
			}
		}
	case utf8.Valid(shown):
		v.Format = "text"
	default:
		v.Format = "binary"
	}
	if redact {
		for i := range v.Fields {
			v.Fields[i] = field{Name: switchboard.RedactNumbers(v.Fields[i].Name), Value: switchboard.Redacted}
		}
		v.Format, v.Pretty, v.Raw = "redacted", "", switchboard.Redacted
		return v
	}
	if v.Format == "binary" {
		v.Raw = strconv.Itoa(len(body)) + " bytes, not text"
		return v
	}
	v.Raw = strings.ToValidUTF8(string(shown), "\uFFFD")
	return v
}

// formFields are a form's fields in the order sent, which url.Values
// would lose.
func formFields(s string) []field {
	var out []field
	for pair := range strings.SplitSeq(s, "&") {
		if pair == "" {
			continue
		}
		if len(out) == maxBodyFields {
			out = append(out, field{Name: "…", Value: "more fields not shown"})
			break
		}
		k, v, _ := strings.Cut(pair, "=")
		out = append(out, field{Name: unescapeForm(k), Value: unescapeForm(v)})
	}
	return out
}

func unescapeForm(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return strings.ToValidUTF8(u, "\uFFFD")
	}
	return s // as sent, when it does not decode
}

// jsonFields are a JSON object's members in the order sent, a string
// unquoted and anything else compact; nil for anything but an object.
func jsonFields(b []byte) []field {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil
		}
		if len(out) == maxBodyFields {
			return append(out, field{Name: "…", Value: "more fields not shown"})
		}
		out = append(out, field{Name: name, Value: jsonValue(raw)})
	}
	return out
}

func jsonValue(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

var errXMLTooLarge = errors.New("too many elements to re-indent")

// indentXML re-indents an XML document two spaces a level, an element
// holding only text on one line. It reads raw tokens, so prefixes stay as
// written; it fails on a document that does not parse.
func indentXML(body []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var (
		out     strings.Builder
		depth   int
		names   []string // the open elements, which RawToken does not match
		open    string   // a start tag not yet written: its element may hold only text
		text    string   // that element's text so far
		pending bool
	)
	line := func(d int, s string) {
		if out.Len() > 0 {
			out.WriteByte('\n')
		}
		out.WriteString(strings.Repeat("  ", d))
		out.WriteString(s)
	}
	flush := func() {
		if pending {
			line(depth-1, open)
			if text != "" {
				line(depth, text)
			}
			pending, text = false, ""
		}
	}
	for n := 0; ; n++ {
		if n == maxXMLTokens {
			return "", errXMLTooLarge
		}
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			flush()
			if depth == maxXMLDepth {
				return "", errXMLTooLarge
			}
			var b strings.Builder
			b.WriteString("<" + qname(t.Name))
			for _, a := range t.Attr {
				b.WriteString(" " + qname(a.Name) + `="` + escapeXML(a.Value, true) + `"`)
			}
			b.WriteString(">")
			open, pending = b.String(), true
			names = append(names, qname(t.Name))
			depth++
		case xml.EndElement:
			if depth == 0 || names[depth-1] != qname(t.Name) {
				return "", errors.New("unbalanced end tag")
			}
			names = names[:depth-1]
			depth--
			switch {
			case pending && text == "":
				line(depth, strings.TrimSuffix(open, ">")+"/>")
			case pending:
				line(depth, open+text+"</"+qname(t.Name)+">")
			default:
				line(depth, "</"+qname(t.Name)+">")
			}
			pending, text = false, ""
		case xml.CharData:
			s := strings.TrimSpace(string(t))
			if s == "" {
				continue
			}
			if pending && text == "" {
				text = escapeXML(s, false)
				continue
			}
			flush()
			line(depth, escapeXML(s, false))
		case xml.Comment:
			flush()
			line(depth, "<!--"+string(t)+"-->")
		case xml.ProcInst:
			flush()
			line(depth, "<?"+t.Target+" "+string(t.Inst)+"?>")
		case xml.Directive:
			flush()
			line(depth, "<!"+string(t)+">")
		}
	}
	if depth != 0 {
		return "", errors.New("unclosed element")
	}
	return out.String(), nil
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

func escapeXML(s string, attr bool) string {
	if attr {
		return attrEscaper.Replace(s)
	}
	return textEscaper.Replace(s)
}
