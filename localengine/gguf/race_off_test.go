//go:build !race

package gguf

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
