package store

import (
	"strconv"
	"strings"

	"github.com/switchboard-dev/switchboard"
)

// A LatencyHistogram is stored as text: its number of buckets, then the
// index and count of each bucket that holds anything, "53:4=10,5=2". Most
// buckets of a minute's histogram are empty, so this is a few bytes where
// every bucket would take a hundred; and the number of buckets keeps a
// histogram of another shape, stored by another version, from being
// misread.

// EncodeLatency returns h's stored form: "" for an empty or nil h.
func EncodeLatency(h switchboard.LatencyHistogram) string {
	var b strings.Builder
	for i, c := range h {
		if c == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString(strconv.Itoa(len(h)))
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(c, 10))
	}
	return b.String()
}

// DecodeLatency returns the histogram stored as s, or the sum of those
// stored as the space-separated items of s; nil for none. An item that is
// not a histogram of switchboard.NewLatencyHistogram's shape is left out,
// not misread.
func DecodeLatency(s string) switchboard.LatencyHistogram {
	var sum switchboard.LatencyHistogram
	for item := range strings.SplitSeq(s, " ") {
		if h := decodeLatency(item); h != nil {
			if sum == nil {
				sum = h
			} else {
				sum.Add(h)
			}
		}
	}
	return sum
}

func decodeLatency(s string) switchboard.LatencyHistogram {
	size, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil
	}
	h := switchboard.NewLatencyHistogram()
	if n, err := strconv.Atoi(size); err != nil || n != len(h) {
		return nil
	}
	for pair := range strings.SplitSeq(rest, ",") {
		is, cs, ok := strings.Cut(pair, "=")
		i, err1 := strconv.Atoi(is)
		c, err2 := strconv.ParseInt(cs, 10, 64)
		if !ok || err1 != nil || err2 != nil || i < 0 || i >= len(h) || c < 0 {
			return nil
		}
		h[i] += c
	}
	return h
}
