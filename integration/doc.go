// Package integration runs icefill against real servers and checks that other
// engines read exactly what icefill wrote.
//
// TestMain starts a real S3 server (integration/servers/s3.sh: MinIO by default)
// and the Apache Iceberg reference REST catalog (integration/servers/rest-catalog.sh:
// RESTCatalogServer on a SQLite JdbcCatalog, S3FileIO on that S3 server), builds
// bin/icefill, and stops both servers when the tests end, also when a test panics or
// the binary is killed by -timeout (a watchdog process stops them once this process
// is gone). The readers are PyIceberg and PySpark with the Iceberg Spark runtime,
// installed by integration/readers/setup.sh into the cache. Fault-injecting
// proxies (faultproxy_test.go) sit between icefill and the REST catalog or S3
// in TestFaultInjection.
//
// Run it with integration/run.sh (make test-integration), or, once the cache is
// filled, go test -tags integration ./integration/ -count=1 -v -timeout 60m.
package integration
