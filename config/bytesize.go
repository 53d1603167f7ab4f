package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a number of bytes, written in YAML as an integer or with a
// unit: "512KiB", "8MiB", "1GiB" (powers of 1024) or "500KB", "8MB"
// (powers of 1000).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// UnmarshalYAML parses a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: invalid size %q (want bytes, or a number with KiB, MiB, GiB, KB, MB, GB)", n.Line, n.Value)
	}
	*b = ByteSize(v * mult)
	return nil
}

// MarshalYAML writes the size in the largest binary unit that divides it.
func (b ByteSize) MarshalYAML() (any, error) {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30), nil
	case b != 0 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20), nil
	case b != 0 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10), nil
	}
	return int64(b), nil
}
