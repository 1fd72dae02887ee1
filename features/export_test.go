package features

// SplitAttribution cuts every partition's customers into parts ranges
// computed apart, as a large partition's are; restore undoes it.
func SplitAttribution(parts int) (restore func()) {
	forcedParts = parts
	return func() { forcedParts = 0 }
}
