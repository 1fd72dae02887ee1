// Package pqfile writes Arrow records as one Parquet object through an
// objstore.Store, published whole or not at all.
package pqfile
