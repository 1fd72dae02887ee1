// Package validate compares two refs of the table (branches, tags or
// snapshots) partition by partition and judges the differences against the
// declared ones: the report promote requires a pass of. It also totals refs
// side by side (RefTotals) for people checking a backfill by eye.
package validate
