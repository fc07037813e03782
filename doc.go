// Package catga is an opinionated microservice framework: typed command,
// query and event handlers composed with fx into a service that runs on one
// laptop with no broker, and unchanged on Kubernetes with NATS JetStream or
// Redis Streams.
//
//	fx.New(catga.Module, orders.Module).Run()
//
// Module is the kitchen sink; its parts live in app, cqrs, cqrs/memory,
// modules/health and modules/http. The application layer is cqrs, the
// transports are cqrs/memory, modules/natsmod and modules/redismod, the
// stores with a transactional outbox are modules/pgmod and modules/redismod,
// and the bootstrap is app.
package catga
