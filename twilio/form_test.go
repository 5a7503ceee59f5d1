package twilio

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseForm(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		body string
		want url.Values
	}{
		{name: "Empty", body: "", want: url.Values{}},
		{name: "Single", body: "a=1", want: url.Values{"a": {"1"}}},
		{
			name: "RepeatedKeysKeepOrder",
			body: "MediaUrl=b&To=x&MediaUrl=a&MediaUrl=b",
			want: url.Values{"MediaUrl": {"b", "a", "b"}, "To": {"x"}},
		},
		{name: "PlusIsSpace", body: "Body=hello+world", want: url.Values{"Body": {"hello world"}}},
		{name: "EncodedPlus", body: "From=%2B14158675309", want: url.Values{"From": {"+14158675309"}}},
		{name: "NoEquals", body: "a&b=2", want: url.Values{"a": {""}, "b": {"2"}}},
		{name: "EmptyValue", body: "a=", want: url.Values{"a": {""}}},
		{name: "EmptyKey", body: "=v", want: url.Values{"": {"v"}}},
		{name: "EmptyPairsSkipped", body: "&a=1&&b=2&", want: url.Values{"a": {"1"}, "b": {"2"}}},
		{name: "SemicolonIsData", body: "Body=a;b&c;d=1", want: url.Values{"Body": {"a;b"}, "c;d": {"1"}}},
		{name: "SecondEqualsInValue", body: "a=b=c", want: url.Values{"a": {"b=c"}}},
		{name: "EncodedKey", body: "Media%55rl0=x", want: url.Values{"MediaUrl0": {"x"}}},
		{name: "UTF8", body: "Body=%E2%9C%93+ok", want: url.Values{"Body": {"✓ ok"}}},
		{name: "EncodedAmpersand", body: "Body=a%26b", want: url.Values{"Body": {"a&b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := ParseForm([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseForm(%q): %v", tt.body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseForm(%q) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseFormMalformed(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		body     string
		wantPair string // what the error must quote
	}{
		{name: "BadHexValue", body: "a=1&b=%zz", wantPair: `pair 2 "b=%zz"`},
		{name: "TruncatedEscape", body: "a=%4", wantPair: `pair 1 "a=%4"`},
		{name: "LonePercent", body: "a=%", wantPair: `pair 1 "a=%"`},
		{name: "BadKey", body: "x=1&&%g1=2", wantPair: `pair 3 "%g1=2"`},
		{name: "LongPairTruncated", body: "a=" + strings.Repeat("x", 100) + "%", wantPair: `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := ParseForm([]byte(tt.body))
			if !errors.Is(err, ErrMalformedForm) {
				t.Fatalf("ParseForm(%q) error = %v, want ErrMalformedForm", tt.body, err)
			}
			if got != nil {
				t.Errorf("ParseForm(%q) values = %v, want nil", tt.body, got)
			}
			if !strings.Contains(err.Error(), tt.wantPair) {
				t.Errorf("error %q does not name the pair (%s)", err, tt.wantPair)
			}
		})
	}
}

func FuzzParseForm(f *testing.F) {
	for _, seed := range []string{
		"",
		"a=1&b=2&a=3",
		"Body=hello+world&From=%2B1415",
		"a;b=c;d",
		"&&=&a",
		"a=%zz",
		"a=%4",
		"%E2%9C%93=%FF",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, err := ParseForm(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedForm) {
				t.Fatalf("ParseForm(%q) error %v does not wrap ErrMalformedForm", body, err)
			}
			return
		}
		again, err := ParseForm([]byte(values.Encode()))
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", values.Encode(), body, err)
		}
		if !reflect.DeepEqual(values, again) {
			t.Fatalf("round trip of %q: got %v, want %v", body, again, values)
		}
	})
}
