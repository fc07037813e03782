package app

import (
	"fmt"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

func parseLevel(s string) (zapcore.Level, error) {
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// NewLogger returns the zap logger of c: LOG_LEVEL, LOG_FORMAT json or
// console, every line with the service and instance.
func NewLogger(c Config) (*zap.Logger, error) {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	zc := zap.NewProductionConfig()
	if c.LogFormat == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Sampling = nil
	zc.DisableStacktrace = true
	log, err := zc.Build()
	if err != nil {
		return nil, err
	}
	return log.With(zap.String("service", c.Service), zap.String("instance", c.Instance)), nil
}

// NewSlog returns a *slog.Logger writing through log's core.
func NewSlog(log *zap.Logger) *slog.Logger {
	return slog.New(zapslog.NewHandler(log.Core()))
}
