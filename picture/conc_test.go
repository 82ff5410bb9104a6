package picture

import (
	"sync"
	"testing"
)

// TestConcurrentDecoders runs the WebAssembly decoders from several
// goroutines at once, as a server does.
func TestConcurrentDecoders(t *testing.T) {
	if testing.Short() {
		t.Skip("the WebAssembly decoders take a second or two to compile")
	}
	inputs := [][]byte{readFixture(t, "avif/quad.avif"), readFixture(t, "heic/quad.heic"), readFixture(t, "webp/animated.webp")}
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
