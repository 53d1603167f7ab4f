//go:build !(linux || darwin || freebsd)

package ledger

// lockDir does not lock on this platform: run one gateway per spool
// directory.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }

// syncDir is a no-op on this platform, where directories cannot be
// fsynced; file contents are still fsynced.
func syncDir(string) error { return nil }
