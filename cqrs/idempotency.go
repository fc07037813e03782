package cqrs

import (
	"time"
)

// Idempotency defaults: how long the Idempotency behavior holds a key while
// its handler runs, and how long an inbox keeps a handled message's key
// (CATGA_IDEMPOTENCY_TTL's envDefault tag).
const defaultIdempotencyLease = 5 * time.Minute

var defaultIdempotencyTTL = defaults.IdempotencyTTL
