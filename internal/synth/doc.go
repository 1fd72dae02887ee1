// Package synth writes deterministic synthetic raw-event Parquet day folders
// that follow the CLV source contract, with the duplicates, late data, schema
// switch and rare bad rows a real producer delivers.
package synth
