//go:build !unix

package restorer

import "time"

// lutimes is a no-op where symlink times cannot be set.
func lutimes(string, time.Time) error { return nil }
