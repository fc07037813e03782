package redismod_test

import (
	"os"

	"go.uber.org/zap"
)

func zapDebug() *zap.Logger {
	if os.Getenv("REDISMOD_TEST_LOG") == "" {
		return nil
	}
	l, _ := zap.NewDevelopment()
	return l
}
