// Package report renders icefill's report page: one self-contained HTML
// file (inline CSS and SVG, no script, nothing fetched) showing a backfill
// branch's partitions as a calendar, its progress, its last validation and
// the table's publishing history, all read from the catalog.
package report
