package natsmod

import "testing"

func TestServerVersion_ReadsMajorAndMinor(t *testing.T) {
	for _, c := range []struct {
		v            string
		major, minor int
		ok           bool
	}{
		{"2.9.10", 2, 9, true},
		{"2.10.0", 2, 10, true},
		{"2.11.0-RC.1", 2, 11, true},
		{"3.0", 3, 0, true},
		{"", 0, 0, false},
		{"v2.10.0", 0, 10, false},
		{"2", 2, 0, false},
	} {
		major, minor, ok := serverVersion(c.v)
		if ok != c.ok || ok && (major != c.major || minor != c.minor) {
			t.Errorf("serverVersion(%q) = %d, %d, %v; want %d, %d, %v", c.v, major, minor, ok, c.major, c.minor, c.ok)
		}
	}
}
