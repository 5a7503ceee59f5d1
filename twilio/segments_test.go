package twilio

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSegments(t *testing.T) {
	t.Parallel()
	r := strings.Repeat
	tests := []struct {
		name     string
		body     string
		segments int
		encoding string
	}{
		{"Empty", "", 1, EncodingGSM7},
		{"GSM7One", "hello", 1, EncodingGSM7},
		{"GSM7Full", r("a", 160), 1, EncodingGSM7},
		{"GSM7Over", r("a", 161), 2, EncodingGSM7},
		{"GSM7TwoFull", r("a", 306), 2, EncodingGSM7},
		{"GSM7ThreeStart", r("a", 307), 3, EncodingGSM7},
		{"GSM7Alphabet", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\n\r", 1, EncodingGSM7},
		{"ExtensionCountsTwo", r("€", 80), 1, EncodingGSM7},   // 160 septets
		{"ExtensionOver", r("€", 81), 2, EncodingGSM7},        // 162 septets
		{"ExtensionMix", r("a", 159) + "^", 2, EncodingGSM7},  // 161 septets
		{"ExtensionFits", r("a", 158) + "|", 1, EncodingGSM7}, // 160 septets
		{"AllExtensions", "^{}\\[~]|€\f", 1, EncodingGSM7},
		// 152 + an escape that must not be split + 152: 306 septets, but
		// 3 segments (152 | 2+151 | 1).
		{"ExtensionNotSplit", r("a", 152) + "€" + r("a", 152), 3, EncodingGSM7},
		{"ExtensionAtBoundary", r("a", 151) + "€" + r("a", 153), 2, EncodingGSM7},
		{"UCS2One", "Привет", 1, EncodingUCS2},
		{"UCS2Full", r("ж", 70), 1, EncodingUCS2},
		{"UCS2Over", r("ж", 71), 2, EncodingUCS2},
		{"UCS2TwoFull", r("ж", 134), 2, EncodingUCS2},
		{"UCS2ThreeStart", r("ж", 135), 3, EncodingUCS2},
		{"OneNonGSMMakesUCS2", r("a", 69) + "ç", 1, EncodingUCS2}, // ç is not GSM-7 (Ç is)
		{"OneNonGSMOver", r("a", 70) + "ç", 2, EncodingUCS2},
		{"ExtensionInUCS2IsOneUnit", r("€", 69) + "ж", 1, EncodingUCS2},
		{"CurlyQuote", "it’s", 1, EncodingUCS2},
		{"Emoji", "😀", 1, EncodingUCS2},
		{"EmojiFull", r("😀", 35), 1, EncodingUCS2}, // 70 UTF-16 units
		{"EmojiOver", r("😀", 36), 2, EncodingUCS2}, // 72 units: 33 pairs + 3
		{"EmojiAndText", r("a", 68) + "😀", 1, EncodingUCS2},
		{"EmojiTextOver", r("a", 69) + "😀", 2, EncodingUCS2},
		// 66 + a pair that must not be split + 66: 134 units, but 3
		// segments (66 | 2+65 | 1).
		{"SurrogatePairNotSplit", r("ж", 66) + "😀" + r("ж", 66), 3, EncodingUCS2},
		{"EmojiSequence", "👍🏽", 1, EncodingUCS2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, enc := Segments(tt.body)
			if n != tt.segments || enc != tt.encoding {
				t.Errorf("Segments(%d chars) = %d, %s; want %d, %s", utf8.RuneCountInString(tt.body), n, enc, tt.segments, tt.encoding)
			}
		})
	}
}

// TestGSM7Tables: the GSM 03.38 default alphabet has 128 positions, one of
// them the escape to the 10 characters of the extension table that
// carriers use.
func TestGSM7Tables(t *testing.T) {
	t.Parallel()
	if len(gsm7Basic) != 127 || len(gsm7Extended) != 10 {
		t.Errorf("%d basic and %d extended characters, want 127 and 10", len(gsm7Basic), len(gsm7Extended))
	}
	for r := range gsm7Extended {
		if gsm7Basic[r] {
			t.Errorf("%q is in both tables", r)
		}
	}
	for _, r := range "\x1b`ÀçÁ" {
		if gsm7Basic[r] || gsm7Extended[r] {
			t.Errorf("%q is not GSM-7", r)
		}
	}
}
