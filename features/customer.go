package features

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// CustomerID is a customer UUID held as its 16 raw bytes. Comparing the bytes
// orders customers exactly like comparing their lowercase canonical text
// (hex digits sort 0-9 then a-f in both), so no string is needed until output.
type CustomerID [16]byte

// v1Namespace is the RFC 9562 URL namespace the spec names for v1 user ids.
var v1Namespace = CustomerID{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// v1Prefix is the SHA-1 input before the decimal user id.
var v1Prefix = append(append([]byte{}, v1Namespace[:]...), "urn:clv:user:"...)

// CustomerFromV1 maps a v1 integer user id to UUIDv5(URL namespace,
// "urn:clv:user:<decimal>").
func CustomerFromV1(userID int64) CustomerID {
	var buf [16 + 13 + 20]byte
	copy(buf[:], v1Prefix)
	name := strconv.AppendInt(buf[:len(v1Prefix)], userID, 10)
	sum := sha1.Sum(name)
	var c CustomerID
	copy(c[:], sum[:16])
	c[6] = (c[6] & 0x0f) | 0x50 // version 5
	c[8] = (c[8] & 0x3f) | 0x80 // RFC 9562 variant
	return c
}

// ParseCustomerV2 accepts exactly the spec's pattern
// ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$
// (any version and variant bits, either case) and reports false otherwise.
func ParseCustomerV2(s []byte) (CustomerID, bool) {
	var c CustomerID
	hi, lo, ok := parseUUID(s)
	if !ok {
		return c, false
	}
	binary.BigEndian.PutUint64(c[:8], hi)
	binary.BigEndian.PutUint64(c[8:], lo)
	return c, true
}

// hexTab maps a hex digit to its value and anything else to 0xff.
var hexTab = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

// parseUUID is ParseCustomerV2 returning the big-endian halves.
func parseUUID(s []byte) (hi, lo uint64, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return 0, 0, false
	}
	var bad byte
	for _, i := range [...]int{0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17} {
		v := hexTab[s[i]]
		bad |= v
		hi = hi<<4 | uint64(v)
	}
	for _, i := range [...]int{19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35} {
		v := hexTab[s[i]]
		bad |= v
		lo = lo<<4 | uint64(v)
	}
	return hi, lo, bad&0xf0 == 0
}

// String is the lowercase canonical 8-4-4-4-12 form.
func (c CustomerID) String() string {
	var out [36]byte
	c.appendText(out[:0])
	return string(out[:])
}

// appendText writes the canonical form into dst[:36] (dst needs room).
func (c CustomerID) appendText(dst []byte) {
	out := dst[:36]
	hex.Encode(out[0:8], c[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], c[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], c[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], c[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], c[10:16])
}

// Less orders customers by their canonical text's byte order.
func (c CustomerID) Less(o CustomerID) bool {
	for i := range c {
		if c[i] != o[i] {
			return c[i] < o[i]
		}
	}
	return false
}
