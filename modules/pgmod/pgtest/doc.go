// Package pgtest runs real PostgreSQL servers for tests, as redistest runs
// redis-server: each in a temporary directory of its own, on a free port
// of 127.0.0.1, stopped and removed at the test's cleanup.
//
//	func TestStore(t *testing.T) {
//		srv := pgtest.Start(t)
//		db := srv.NewDatabase(t) // a URL: postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable
//		...
//	}
//
// A server costs about a second to create (initdb), a database a few
// milliseconds. A package whose tests each want a database of their own
// shares one server: TestMain runs the tests through Main, and each test
// asks Shared for the server, started by the first that asks and stopped
// after the last test.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
//
//	func TestOrders(t *testing.T) {
//		db := pgtest.Shared(t).NewDatabase(t)
//		...
//	}
//
// A test that needs to restart or crash its server starts one of its own:
// Restart (a fast shutdown, then a start on the same port and data), Kill
// (SIGKILL to every process of the server, as a crash) and StartAgain.
//
// It needs the PostgreSQL server programs (initdb, postgres; see
// internal/pgserver for where they are looked for). Without them a test
// fails, saying how to install them: it does not skip. make test installs
// them where it can. Run as root, the server runs as the postgres user
// (or nobody), since PostgreSQL refuses root.
package pgtest
