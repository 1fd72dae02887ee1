package features

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
)

// CustomerID is a customer UUID held as its 16 raw bytes. Comparing the bytes
// orders customers exactly like comparing their lowercase canonical text
// (hex digits sort 0-9 then a-f in both), so no string is needed until output.
type CustomerID [16]byte

// v1Namespace is the RFC 9562 URL namespace the spec names for v1 user ids.
var v1Namespace = CustomerID{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// CustomerFromV1 maps a v1 integer user id to UUIDv5(URL namespace,
// "urn:clv:user:<decimal>").
func CustomerFromV1(userID int64) CustomerID {
	var buf [16 + 13 + 20]byte
	copy(buf[:16], v1Namespace[:])
	name := append(buf[:16], "urn:clv:user:"...)
	name = strconv.AppendInt(name, userID, 10)
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
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return c, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := hexVal(s[i])
		lo, ok2 := hexVal(s[i+1])
		if !ok1 || !ok2 {
			return c, false
		}
		c[j] = hi<<4 | lo
		j++
		i += 2
	}
	return c, true
}

func hexVal(b byte) (byte, bool) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', true
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, true
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// String is the lowercase canonical 8-4-4-4-12 form.
func (c CustomerID) String() string {
	var out [36]byte
	hex.Encode(out[0:8], c[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], c[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], c[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], c[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], c[10:16])
	return string(out[:])
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
