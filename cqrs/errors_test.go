package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/catga-go/catga/cqrs"
)

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want cqrs.Code
	}{
		{nil, ""},
		{cqrs.NewError(cqrs.CodeNotFound, "x"), cqrs.CodeNotFound},
		{fmt.Errorf("wrapped: %w", cqrs.Errorf(cqrs.CodeConflict, "dup %s", "x")), cqrs.CodeConflict},
		{cqrs.Permanent(cqrs.NewError(cqrs.CodeUnauthorized, "no")), cqrs.CodeUnauthorized},
		{context.DeadlineExceeded, cqrs.CodeTimeout},
		{context.Canceled, cqrs.CodeUnavailable},
		{fmt.Errorf("%w for x", cqrs.ErrNoHandler), cqrs.CodeUnavailable},
		{&cqrs.PayloadTooLargeError{Name: "X", Size: 2, Limit: 1}, cqrs.CodeInvalid},
		{errors.New("plain"), cqrs.CodeInternal},
	}
	for _, tt := range tests {
		if got := cqrs.CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrorf_WrapsCause(t *testing.T) {
	cause := errors.New("disk")
	err := cqrs.Errorf(cqrs.CodeUnavailable, "store: %w", cause)
	if !errors.Is(err, cause) || err.Error() != "store: disk" {
		t.Fatalf("err = %v, want it to wrap its cause", err)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("x")
	if cqrs.IsPermanent(base) {
		t.Error("a plain error is not permanent")
	}
	if p := cqrs.Permanent(base); !cqrs.IsPermanent(p) || !errors.Is(p, base) {
		t.Error("Permanent(err) must be permanent and wrap err")
	}
	if !cqrs.IsPermanent(cqrs.NewError(cqrs.CodeInvalid, "bad")) {
		t.Error("an invalid error is permanent")
	}
	if cqrs.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}

func TestParseCode_UnknownIsInternal(t *testing.T) {
	if cqrs.ParseCode("not_found") != cqrs.CodeNotFound || cqrs.ParseCode("weird") != cqrs.CodeInternal {
		t.Fatal("ParseCode")
	}
}
