package tracker

import (
	"errors"
	"testing"

	chihayalog "github.com/chihaya/chihaya/pkg/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestChihayaLogsGoToZap(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	RouteChihayaLogs(zap.New(core))
	t.Cleanup(func() { RouteChihayaLogs(zap.NewNop()) })

	chihayalog.Warn("storage trouble", chihayalog.Fields{"shard": 3}, chihayalog.Err(errors.New("boom")))
	chihayalog.Debug("too chatty") // below the zap level: dropped

	got := logs.All()
	if len(got) != 1 {
		t.Fatalf("%d entries, want 1: %+v", len(got), got)
	}
	e := got[0]
	if e.Message != "storage trouble" || e.Level != zapcore.WarnLevel || e.LoggerName != "chihaya" {
		t.Fatalf("entry %+v", e)
	}
	fields := e.ContextMap()
	if fields["shard"] != int64(3) || fields["error"] != "boom" {
		t.Fatalf("fields %v", fields)
	}
}
