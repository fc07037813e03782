// Package inbox is the contract of the stores behind cqrs's Idempotency
// behavior (the inbox): [Store], the [State] a claim finds, and [Memory],
// the in-process store a bus uses when none is provided. redismod provides a
// Store every instance shares; pgmod keeps its inbox in the handler's own
// transaction instead. cqrs/cqrstest runs the contract against a Store.
package inbox
