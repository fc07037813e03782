package transport

import "fmt"

// MaxNameLen bounds a wire name (and an instance name): it becomes part of
// subjects and stream keys.
const MaxNameLen = 128

// ValidateName reports whether name can be a wire name: it becomes a NATS
// subject token and part of a Redis key, so it is ASCII letters, digits, '_'
// and '-', starting with a letter, at most 128 bytes.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("wire name %q: want 1 to %d characters", name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter {
			return fmt.Errorf("wire name %q: must start with a letter", name)
		}
		if !letter && !(c >= '0' && c <= '9') && c != '_' && c != '-' {
			return fmt.Errorf("wire name %q: character %q not allowed (letters, digits, '_' and '-')", name, c)
		}
	}
	return nil
}
