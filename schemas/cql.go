package schemas

import (
	"embed"
	"io/fs"
)

// CQL holds the Cassandra migrations under cql/, named NNNN_name.cql and
// applied in version order by graph/cassandra.Migrate. An applied file must
// never change (Migrate refuses a changed checksum): add a new file instead.
//
//go:embed cql/*.cql
var CQL embed.FS

// CQLMigrations returns the migrations directory itself, the fs.FS that
// graph/cassandra.Migrate reads.
func CQLMigrations() fs.FS {
	sub, err := fs.Sub(CQL, "cql")
	if err != nil {
		// "cql" is a valid constant path, so fs.Sub cannot fail.
		panic(err)
	}
	return sub
}
