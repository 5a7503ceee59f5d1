package twilio

import "unicode/utf16"

// Encodings of a message body.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// gsm7Basic is the GSM 03.38 default alphabet; gsm7Extended are the
// characters sent with an escape, two septets each.
var (
	gsm7Basic    = map[rune]bool{}
	gsm7Extended = map[rune]bool{}
)

func init() {
	for _, r := range "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà" {
		gsm7Basic[r] = true
	}
	for _, r := range "\f^{}\\[~]|€" {
		gsm7Extended[r] = true
	}
}

// Segments returns how many SMS segments body is sent as, and its
// encoding. A GSM-7 body fits one segment up to 160 septets and takes 153
// per segment beyond (an escaped character is two septets and is never
// split across segments); any other body is UCS-2, 70 UTF-16 code units
// in one segment or 67 per segment beyond (a surrogate pair is never
// split). An empty body, as in an MMS, is one segment.
func Segments(body string) (n int, encoding string) {
	septets := make([]int, 0, len(body))
	gsm := true
	for _, r := range body {
		switch {
		case gsm7Basic[r]:
			septets = append(septets, 1)
		case gsm7Extended[r]:
			septets = append(septets, 2)
		default:
			gsm = false
		}
		if !gsm {
			break
		}
	}
	if gsm {
		return pack(septets, 160, 153), EncodingGSM7
	}
	units := make([]int, 0, len(body))
	for _, r := range body {
		units = append(units, utf16.RuneLen(r))
	}
	return pack(units, 70, 67), EncodingUCS2
}

// pack counts the segments needed for characters of the given sizes: all
// of them in one if they fit single, otherwise multi per segment, never
// splitting a character.
func pack(sizes []int, single, multi int) int {
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total <= single {
		return 1
	}
	n, used := 1, 0
	for _, s := range sizes {
		if used+s > multi {
			n++
			used = 0
		}
		used += s
	}
	return n
}
