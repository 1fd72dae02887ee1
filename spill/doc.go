// Package spill is the external path of the partition engine: it computes
// a partition whose window of days does not fit the memory budget by
// bucketing the window's events on local disk, so that each bucket is
// computed in memory by the same kernel as the in-memory path
// (features.ComputeCorrectedOneCore / ComputeLegacy), with identical rows.
package spill
