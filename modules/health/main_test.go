package health_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Ready runs every check on its own goroutine; none may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
