package picture

import (
	"sync"
	"testing"
)

// TestConcurrentDecoders runs the built-in and then the system decoders
// from several goroutines at once, as a server does.
func TestConcurrentDecoders(t *testing.T) {
	eachDecoders(t, func(t *testing.T, _ bool) { testConcurrentDecoders(t) })
}

func testConcurrentDecoders(t *testing.T) {
	inputs := [][]byte{readFixture(t, "avif/quad.avif"), readFixture(t, "heic/quad.heic"), readFixture(t, "webp/animated.webp"),
		readFixture(t, "avif/alpha.avif"), readFixture(t, "webp/alpha-lossy.webp"), readFixture(t, "webp/photo-lossy.webp")}
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func(data []byte) {
			defer wg.Done()
			if _, err := Process(data, Limits{}); err != nil {
				errs <- err
			}
		}(inputs[i%len(inputs)])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
