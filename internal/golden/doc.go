// Package golden compares test output with files under testdata/, for
// outputs people read: `go test -run X ./pkg -args -update` rewrites the
// files from the current output, and the diff goes through review.
package golden
