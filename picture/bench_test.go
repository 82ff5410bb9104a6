package picture

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"
)

// photo makes a deterministic w×h 4:2:0 picture that looks enough like a
// photograph for a codec: smooth gradients, some mid-frequency texture
// and fine noise, in luma and chroma.
func photo(w, h int) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := uint32(12345)
	noise := func(amp int) float64 {
		rng ^= rng << 13
		rng ^= rng >> 17
		rng ^= rng << 5
		return float64(int(rng%uint32(2*amp+1)) - amp)
	}
	fw, fh := float64(w), float64(h)
	for y := 0; y < h; y++ {
		fy := float64(y) / fh
		for x := 0; x < w; x++ {
			fx := float64(x) / fw
			v := 110 + 70*fy - 40*fx +
				30*math.Sin(6.3*fx+2*fy)*math.Cos(4.1*fy) +
				12*math.Sin(float64(x)/9+math.Sin(float64(y)/13)) +
				noise(9)
			m.Y[y*m.YStride+x] = clamp8(int(v))
		}
	}
	cw, ch := (w+1)/2, (h+1)/2
	for y := 0; y < ch; y++ {
		fy := float64(y) / float64(ch)
		for x := 0; x < cw; x++ {
			fx := float64(x) / float64(cw)
			m.Cb[y*m.CStride+x] = clamp8(int(128 + 40*math.Sin(3*fx+fy) + noise(3)))
			m.Cr[y*m.CStride+x] = clamp8(int(128 + 35*math.Cos(2*fy-fx) + noise(3)))
		}
	}
	return m
}

var benchInputs sync.Map // name → []byte, built once per run

func benchInput(b *testing.B, name string, build func() []byte) []byte {
	if v, ok := benchInputs.Load(name); ok {
		return v.([]byte)
	}
	v := build()
	benchInputs.Store(name, v)
	return v
}

func benchJPEG(w, h int) func() []byte {
	return func() []byte {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, photo(w, h), &jpeg.Options{Quality: 90}); err != nil {
			panic(err)
		}
		return buf.Bytes()
	}
}

func benchPNG(w, h int) func() []byte {
	return func() []byte {
		src := photo(w, h)
		rgba := image.NewRGBA(src.Rect)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				rgba.Set(x, y, src.At(x, y))
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, rgba); err != nil {
			panic(err)
		}
		return buf.Bytes()
	}
}

// heapPeak samples the bytes of heap objects about every millisecond
// until stop is closed, and sends the highest value seen.
func heapPeak(stop <-chan struct{}, peak chan<- uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var max uint64
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > max {
			max = v
		}
		select {
		case <-stop:
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > max {
				max = v
			}
			peak <- max
			return
		case <-t.C:
		}
	}
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkProcess measures Process on generated photographs. Besides
// ns/op it reports peak-MiB: the highest heap (live and not yet swept
// objects, sampled every millisecond) during one call, above the heap
// after a forced GC just before it, plus the input itself; that is the
// heap one call needs. input-MiB is the size of the input.
func BenchmarkProcess(b *testing.B) {
	cases := []struct {
		name  string
		build func() []byte
	}{
		{"jpeg-1MP", benchJPEG(1152, 864)},
		{"jpeg-12MP", benchJPEG(4000, 3000)},
		{"jpeg-48MP", benchJPEG(8000, 6000)},
		{"png-12MP", benchPNG(4000, 3000)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			data := benchInput(b, c.name, c.build)
			measure(b, data, func(d []byte) error { _, err := Process(d, Limits{}); return err })
			b.ReportMetric(float64(len(data))/(1<<20), "input-MiB")
		})
	}
}

// referencePipeline is the plain pure-Go approach the targets were set
// against: decode at full size with the standard library, crop the centre
// square, shrink with a cheap kernel to twice the output, then CatmullRom
// to 640, and encode. BenchmarkReference runs it on the same inputs as
// BenchmarkProcess so that the two can be compared within one run.
func referencePipeline(data []byte) error {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return err
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	sq := image.Rect(x0, y0, x0+side, y0+side)
	mid := image.NewRGBA(image.Rect(0, 0, 2*FullSize, 2*FullSize))
	xdraw.ApproxBiLinear.Scale(mid, mid.Bounds(), img, sq, xdraw.Src, nil)
	out := image.NewRGBA(image.Rect(0, 0, FullSize, FullSize))
	xdraw.CatmullRom.Scale(out, out.Bounds(), mid, mid.Bounds(), xdraw.Src, nil)
	return jpeg.Encode(io.Discard, out, &jpeg.Options{Quality: Quality})
}

func BenchmarkReference(b *testing.B) {
	for _, c := range []struct {
		name  string
		build func() []byte
	}{
		{"jpeg-12MP", benchJPEG(4000, 3000)},
		{"jpeg-48MP", benchJPEG(8000, 6000)},
		{"png-12MP", benchPNG(4000, 3000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			measure(b, benchInput(b, c.name, c.build), referencePipeline)
		})
	}
}

// measure times f on data b.N times and reports the peak heap of one call
// (sampled while it runs, after a GC, plus the input) as peak-MiB.
func measure(b *testing.B, data []byte, f func([]byte) error) {
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		base := heapNow()
		stop, got := make(chan struct{}), make(chan uint64, 1)
		go heapPeak(stop, got)
		b.StartTimer()
		if err := f(data); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		close(stop)
		if p := <-got; p > base && p-base > peak {
			peak = p - base
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak+uint64(len(data)))/(1<<20), "peak-MiB")
}
