package pgmod_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
