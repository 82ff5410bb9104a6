package maxfake

import (
	"context"
	"time"
)

// contextWithTimeout bounds one write to a connection.
func contextWithTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
