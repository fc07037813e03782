// Package health serves the liveness and readiness probes.
//
// /health (liveness) answers 200 while the process can serve HTTP; it checks
// no dependency, so a broker outage never gets pods restarted. /ready
// (readiness) answers 200 only when the registry is serving and every
// registered Checker passes; otherwise 503 with a JSON body naming each check
// and its state:
//
//	{"status":"unavailable","state":"serving","checks":{"nats":{"status":"fail","error":"disconnected"}}}
//
// The registry is "starting" until the app has started everything and
// "draining" from the first moment of shutdown, so Kubernetes stops routing
// to a pod before it stops taking messages. Checks run concurrently, each
// bounded by the probe timeout.
package health
