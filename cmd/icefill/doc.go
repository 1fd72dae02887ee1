// Command icefill recomputes years of daily partitions of an Iceberg table
// onto a branch, resumes after any crash, validates the result, publishes
// it atomically and can undo the publication.
package main
