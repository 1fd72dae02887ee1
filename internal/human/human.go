// Package human formats quantities for people: the one way the CLI and the
// report page write a byte count.
package human

import "fmt"

// Bytes writes n in binary units with one decimal: "512 B", "1.5 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	neg := ""
	if n < 0 {
		neg, n = "-", -n
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%s%.1f %ciB", neg, float64(n)/float64(div), "KMGTPE"[exp])
}
