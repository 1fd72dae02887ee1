// Package snapshots owns icefill's state in the catalog: the checkpoint of
// every partition committed to a backfill branch, the branch itself, the
// commit loop that survives concurrent writers and unknown outcomes, the
// clean-up of files no snapshot references, validation records, and the
// promotion and rollback of main. docs/commit-protocol.md describes the
// protocol.
package snapshots
