package tracker

import (
	"io"

	chihayalog "github.com/chihaya/chihaya/pkg/log"
	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// RouteChihayaLogs sends chihaya's logrus output into zap, so the process
// writes one log format. chihaya's logger is package state we cannot get at,
// but its formatter is ours to set: this one logs through zap and returns
// nothing for logrus to write.
func RouteChihayaLogs(log *zap.Logger) {
	chihayalog.SetOutput(io.Discard)
	chihayalog.SetFormatter(zapFormatter{log: log.Named("chihaya")})
	chihayalog.SetDebug(log.Core().Enabled(zapcore.DebugLevel))
}

type zapFormatter struct{ log *zap.Logger }

func (f zapFormatter) Format(e *logrus.Entry) ([]byte, error) {
	fields := make([]zap.Field, 0, len(e.Data))
	for k, v := range e.Data {
		fields = append(fields, zap.Any(fieldName(k), v))
	}
	var lvl zapcore.Level
	switch e.Level {
	case logrus.TraceLevel, logrus.DebugLevel:
		lvl = zapcore.DebugLevel
	case logrus.InfoLevel:
		lvl = zapcore.InfoLevel
	case logrus.WarnLevel:
		lvl = zapcore.WarnLevel
	default:
		// Fatal and panic are logged as errors: logrus decides what happens next.
		lvl = zapcore.ErrorLevel
	}
	if ce := f.log.Check(lvl, e.Message); ce != nil {
		ce.Write(fields...)
	}
	return nil, nil
}

// fieldName drops the "1." that chihaya puts before the fields of its second
// and later Fielders ("1.error" -> "error").
func fieldName(k string) string {
	i := 0
	for i < len(k) && k[i] >= '0' && k[i] <= '9' {
		i++
	}
	if i > 0 && i < len(k)-1 && k[i] == '.' {
		return k[i+1:]
	}
	return k
}
