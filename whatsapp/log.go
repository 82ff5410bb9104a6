package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger adapts whatsmeow's logger interface to log/slog.
//
// whatsmeow's "Send" and "Recv" sub-loggers dump every protocol node
// (message ciphertexts, keys, pairing material), and its QR channel logs
// the codes themselves, which would let anyone reading the logs link the
// account: those are dropped whatever the level.
type waLogger struct {
	log    *slog.Logger
	module string
}

func newWALogger(log *slog.Logger, module string) waLog.Logger {
	return waLogger{log: log, module: module}
}

// Errorf logs at slog.LevelError.
func (l waLogger) Errorf(msg string, args ...any) { l.emit(slog.LevelError, msg, args) }

// Warnf logs at slog.LevelWarn.
func (l waLogger) Warnf(msg string, args ...any) { l.emit(slog.LevelWarn, msg, args) }

// Infof logs at slog.LevelInfo.
func (l waLogger) Infof(msg string, args ...any) { l.emit(slog.LevelInfo, msg, args) }

// Debugf logs at slog.LevelDebug.
func (l waLogger) Debugf(msg string, args ...any) { l.emit(slog.LevelDebug, msg, args) }

// Sub returns the logger of a whatsmeow module.
func (l waLogger) Sub(module string) waLog.Logger {
	switch module {
	case "Send", "Recv":
		return waLog.Noop
	}
	return waLogger{log: l.log, module: l.module + "/" + module}
}

func (l waLogger) emit(level slog.Level, msg string, args []any) {
	if level < slog.LevelWarn && strings.HasSuffix(l.module, "/QRChannel") {
		return
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(msg, args...), "module", l.module)
}
