package twilio

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds of DescribeTwiML: a document past them is refused rather than
// walked, so a hostile answer costs a bounded amount of memory and time.
const (
	maxDescribeDepth    = 8   // Response > Gather > Say is 3; nothing real nests deeper
	maxDescribeElements = 512 // verbs and nouns in all
)

// TwiMLAttr is one attribute of a verb or noun, as written.
type TwiMLAttr struct{ Name, Value string }

// TwiMLVerb is one verb (or noun) of a TwiML document, as Twilio would read
// it: its name, attributes in document order, its own text trimmed, and
// the nouns and verbs nested inside it.
type TwiMLVerb struct {
	Name   string
	Attrs  []TwiMLAttr
	Text   string
	Nested []TwiMLVerb
}

// Attr returns the value of the attribute name, "" when absent.
func (v TwiMLVerb) Attr(name string) string {
	for _, a := range v.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// DescribeTwiML reads body as the TwiML document Twilio would act on and
// returns its verbs in order. An empty body has no verbs (for a message,
// "no reply"). The error, which wraps ErrMalformedTwiML, is for a body
// ParseTwiML refuses, one over MaxTwiMLBytes, or one nesting deeper than
// 8 elements or holding more than 512 of them.
func DescribeTwiML(body []byte) ([]TwiMLVerb, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if len(body) > MaxTwiMLBytes {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrMalformedTwiML, MaxTwiMLBytes)
	}
	if _, err := ParseTwiML(body); err != nil {
		return nil, err
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	dec.CharsetReader = charsetReader
	// stack holds the open elements under <Response>; root is the
	// Response itself, whose Nested are the verbs.
	root := &TwiMLVerb{}
	stack := []*TwiMLVerb{}
	texts := []*strings.Builder{}
	elements := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrMalformedTwiML, oneLine(err.Error()))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && root.Name == "" {
				root.Name = t.Name.Local // Response, as ParseTwiML checked
				stack = append(stack, root)
				texts = append(texts, new(strings.Builder))
				continue
			}
			if elements++; elements > maxDescribeElements {
				return nil, fmt.Errorf("%w: more than %d elements", ErrMalformedTwiML, maxDescribeElements)
			}
			if len(stack) >= maxDescribeDepth {
				return nil, fmt.Errorf("%w: nested deeper than %d elements", ErrMalformedTwiML, maxDescribeDepth)
			}
			v := TwiMLVerb{Name: t.Name.Local}
			for _, a := range t.Attr {
				v.Attrs = append(v.Attrs, TwiMLAttr{a.Name.Local, a.Value})
			}
			parent := stack[len(stack)-1]
			parent.Nested = append(parent.Nested, v)
			stack = append(stack, &parent.Nested[len(parent.Nested)-1])
			texts = append(texts, new(strings.Builder))
		case xml.CharData:
			if len(texts) > 0 {
				texts[len(texts)-1].Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				continue
			}
			stack[len(stack)-1].Text = strings.TrimSpace(texts[len(texts)-1].String())
			stack, texts = stack[:len(stack)-1], texts[:len(texts)-1]
		}
	}
	return root.Nested, nil
}

// Describe says in one line what Twilio would do with v: "reply SMS:
// "…"", "say: "…" (voice alice)", "pause 2s"… A name Twilio does not know
// is named as skipped (warning 12200). Text comes from the document as it
// is: a caller printing it to a terminal must escape control characters.
func (v TwiMLVerb) Describe() string {
	var detail []string
	add := func(label, attr string) {
		if val := v.Attr(attr); val != "" {
			detail = append(detail, label+" "+val)
		}
	}
	var head string
	switch v.Name {
	case "Message":
		text := v.Text
		var media []string
		for _, n := range v.Nested {
			switch n.Name {
			case "Body":
				text = n.Text
			case "Media":
				media = append(media, n.Text)
			}
		}
		head = fmt.Sprintf("reply SMS: %q", text)
		if len(media) > 0 {
			head = fmt.Sprintf("reply MMS: %q", text)
			detail = append(detail, "media "+strings.Join(media, ", "))
		}
		add("to", "to")
		add("from", "from")
		add("status callback", "statusCallback")
	case "Say":
		head = fmt.Sprintf("say: %q", v.Text)
		add("voice", "voice")
		add("language", "language")
		add("loop", "loop")
	case "Play":
		head = "play: " + v.Text
		add("digits", "digits")
		add("loop", "loop")
	case "Gather":
		head = "gather input"
		add("input", "input")
		add("digits", "numDigits")
		add("until", "finishOnKey")
		add("timeout", "timeout")
		add("then", "method")
		add("action", "action")
	case "Dial":
		head = "dial"
		if v.Text != "" {
			head = "dial: " + v.Text
		}
		add("caller ID", "callerId")
		add("timeout", "timeout")
		add("record", "record")
		add("action", "action")
	case "Number", "Client", "Sip", "Conference", "Queue", "Sim", "Identity":
		head = strings.ToLower(v.Name) + ": " + v.Text
		add("send digits", "sendDigits")
		add("url", "url")
	case "Redirect":
		head = "redirect to " + v.Text
		add("method", "method")
	case "Hangup":
		head = "hang up"
	case "Reject":
		head = "reject the call"
		add("reason", "reason")
	case "Pause":
		length := v.Attr("length")
		if length == "" {
			length = "1"
		}
		head = "pause " + length + "s"
	case "Record":
		head = "record the caller"
		add("max length", "maxLength")
		add("action", "action")
		add("transcribe", "transcribe")
	case "Enqueue":
		head = "enqueue in " + v.Text
		add("wait url", "waitUrl")
	case "Leave":
		head = "leave the queue"
	default:
		if !twimlNames[v.Name] {
			return fmt.Sprintf("unknown verb <%s>: Twilio skips it (warning %d)", v.Name, int(CodeSchemaValidationWarning))
		}
		head = strings.ToLower(v.Name)
		if v.Text != "" {
			head += ": " + v.Text
		}
		for _, a := range v.Attrs {
			detail = append(detail, a.Name+" "+a.Value)
		}
	}
	if len(detail) > 0 {
		head += " (" + strings.Join(detail, ", ") + ")"
	}
	return head
}

// DescribeLines lays verbs out one Describe line each, nested verbs and
// nouns indented by two spaces per level under their parent. A <Message>'s
// <Body> and <Media> are part of its own line.
func DescribeLines(verbs []TwiMLVerb) []string {
	var lines []string
	var walk func(vs []TwiMLVerb, indent string)
	walk = func(vs []TwiMLVerb, indent string) {
		for _, v := range vs {
			lines = append(lines, indent+v.Describe())
			if v.Name != "Message" {
				walk(v.Nested, indent+"  ")
			}
		}
	}
	walk(verbs, "")
	return lines
}
