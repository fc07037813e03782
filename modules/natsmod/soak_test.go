//go:build soak

package natsmod_test

import (
	"testing"
	"time"
)

// TestSoak_TenMinutes: go test -tags soak -run Soak_TenMinutes -timeout 20m ./modules/natsmod/
func TestSoak_TenMinutes(t *testing.T) { soak(t, 10*time.Minute) }
