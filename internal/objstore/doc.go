// Package objstore reads and writes immutable objects under one root, on a
// local disk or on any S3-compatible server, so the source reader, the event
// generator and the reject writer never care where the bytes live.
package objstore
