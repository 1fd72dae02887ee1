// Package catalog opens the Iceberg catalog icefill works against (an
// embedded SQLite SQL catalog with a local or S3 warehouse, or a REST
// catalog) and manages the clv_daily table's creation and schema.
//
// The embedded catalog is iceberg-go's SQL catalog on a SQLite file. It is the
// same table layout (iceberg_tables, iceberg_namespace_properties) that
// PyIceberg's SqlCatalog and Spark's/Trino's JdbcCatalog use, so those engines
// can open the same catalog.db, provided they use the same catalog name
// (Config.Name, default "icefill"): the name is stored in the catalog_name
// column of every row, and a catalog opened under another name sees no tables.
// For example, in PyIceberg:
//
//	SqlCatalog("icefill", uri="sqlite:////abs/path/icefill-data/catalog.db",
//	           warehouse="file:///abs/path/icefill-data/warehouse")
//
// and in Spark: spark.sql.catalog.icefill=org.apache.iceberg.spark.SparkCatalog,
// spark.sql.catalog.icefill.catalog-impl=org.apache.iceberg.jdbc.JdbcCatalog,
// spark.sql.catalog.icefill.uri=jdbc:sqlite:/abs/path/icefill-data/catalog.db.
package catalog
