package cqrs

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

// idPrefix and idSeq make ids without a lock: a ULID whose 80 random bits
// are 48 bits drawn once per process and a 32-bit counter. Ids sort by
// time, and within a process by issue; processes differ by their prefix.
var (
	idPrefix [6]byte
	idSeq    atomic.Uint32
)

func init() {
	_, _ = rand.Read(idPrefix[:])
	var seq [4]byte
	_, _ = rand.Read(seq[:])
	idSeq.Store(binary.BigEndian.Uint32(seq[:]) >> 1) // room before it wraps
}

// NewID returns a new message id: a ULID, unique and sortable by time.
func NewID() string {
	var id ulid.ULID
	_ = id.SetTime(uint64(time.Now().UnixMilli()))
	copy(id[6:12], idPrefix[:])
	binary.BigEndian.PutUint32(id[12:], idSeq.Add(1))
	return id.String()
}
