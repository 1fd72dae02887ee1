// Package source reads the raw event source of the spec (§1): one folder
// dt=YYYY-MM-DD of Parquet files per UTC day, on a local disk or S3,
// decoded into features.Day values.
package source
