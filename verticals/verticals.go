// Package verticals ships the verticals that are built into the binary. A
// vertical is one folder (see README.md here and package vertical, which
// reads it); this package only embeds the folders. The streaming vertical
// (streaming/) is the built-in default: `rtgraph demo` runs it, and
// `rtgraph serve` uses its graph schema and mappings unless a configuration
// or --vertical names others.
//
// Other folders under verticals/ (shop/) are examples to copy; they are read
// from disk with --vertical and are not embedded.
package verticals

import (
	"embed"
	"io/fs"
)

// builtin holds the streaming vertical's folder. Files whose names begin
// with "." or "_" are left out, as go:embed does for directories.
//
//go:embed streaming
var builtin embed.FS

// StreamingName is the name of the built-in vertical, and of its folder.
const StreamingName = "streaming"

// Streaming returns the built-in streaming vertical's folder: vertical.yaml,
// graph/, mappings/ and samples/ at its root.
func Streaming() fs.FS {
	sub, err := fs.Sub(builtin, StreamingName)
	if err != nil {
		// StreamingName is a valid constant path, so fs.Sub cannot fail.
		panic(err)
	}
	return sub
}
