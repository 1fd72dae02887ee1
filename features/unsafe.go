package features

import "unsafe"

// unsafeBytes views a string's bytes without copying; callers only read
// them before the Arrow batch that owns them is released.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
