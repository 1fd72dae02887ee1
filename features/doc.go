// Package features is the business logic of clv_daily: it decodes a day of
// raw events into columns (rejecting rows that break the source contract),
// and computes a partition's rows with the legacy logic (the production
// bug, kept to reproduce main) or the corrected one (7-day lookback,
// cross-day de-duplication, first-touch attribution and the feature
// columns). It also holds the rules around them: the lookback window and
// the reject limit. docs/logic.md is its specification.
package features
