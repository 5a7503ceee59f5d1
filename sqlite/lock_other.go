//go:build !unix

package sqlite

import "os"

// Without flock, the delivery lock is not enforced: run one serve process
// per database.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
