// Package devhost is the AppHost: one program that runs a whole system on
// a laptop, with no Docker. Declare the brokers and the services, with
// their references and replica counts, and Run starts everything with the
// connection strings injected:
//
//	h := devhost.New()
//	nats := h.NATS("nats").WithJetStream()
//	redis := h.Redis("redis")
//	pg := h.Postgres("postgres")
//	h.Service("order-service", "./cmd/order-service").Use(nats, redis, pg).Replicas(3)
//	err := h.Run(ctx)
//
// NATS runs embedded in the host process (nats-server as a library,
// JetStream on, data under Options.Dir, kept across runs with Persist).
// Redis runs as a redis-server child process on a free port. PostgreSQL
// runs as child processes too (initdb, then postgres) on a free port,
// trusting its superuser postgres on 127.0.0.1, with its data in a
// temporary directory removed at exit, or under Options.Dir and kept with
// Persist; run as root, the server runs as the postgres user, since
// PostgreSQL refuses root. Without redis-server or the PostgreSQL programs
// (PG_BIN names their directory), Run fails naming the package to
// install. Each service is built once (go build), then started as its
// replicas, each with NATS_URL, REDIS_URL and DATABASE_URL for what it
// uses, CATGA_SERVICE, a distinct HOSTNAME (<service>-<n>) and HTTP_ADDR:
// a free port, or base+n-1 with Service.Port, so a service has addresses
// to bookmark.
//
// The output of every process is shown line by line behind a coloured
// "service/replica" prefix. A status table (service, replica, pid,
// address, ready, restarts) is printed when everything is ready, after a
// restart, and on SIGUSR1; the dashboard (Options.Addr, "/") shows it live,
// with links to each replica's /health, /ready and /metrics, and
// "/api/status" serves it as JSON. A replica that exits is restarted with
// backoff (1s doubling to 30s, reset after a minute up).
//
// When ctx ends (Ctrl-C, SIGTERM), the replicas get SIGTERM, and SIGKILL
// after Options.Grace; then PostgreSQL gets a fast shutdown, then Redis
// stops, then NATS. Every child runs in its own process group and, on
// Linux, dies with the host (PR_SET_PDEATHSIG), so no exit path leaves one
// behind.
//
// catga dev runs the same from a catga.dev.yaml file (see Load).
//
// Choices. The file is read with go.yaml.in/yaml/v3 (the maintained line
// of the yaml.v3 decoder), strictly: an unknown key is an error, so a typo
// does not silently run a different system. Readiness is each replica's
// own /ready, polled every 250ms: the host knows no more about a service
// than Kubernetes would. The table is asked for with SIGUSR1 rather than a
// key press: a goroutine blocked reading stdin cannot be stopped, and the
// host leaves none running. Everything listens on 127.0.0.1 only. On
// systems other than Linux there is no parent-death signal: a host killed
// with SIGKILL leaves its children running there (every other exit stops
// them). Windows delivers no SIGTERM: there a replica is killed at once, and
// the table is on the dashboard only.
package devhost
