module github.com/portrait-dev/portrait/bench/libvips

go 1.26.8

replace github.com/portrait-dev/portrait => ../..

require (
	github.com/davidbyttow/govips/v2 v2.16.0
	github.com/portrait-dev/portrait v0.0.0-00010101000000-000000000000
)

require (
	github.com/ebitengine/purego v0.8.3 // indirect
	github.com/gen2brain/avif v0.4.4 // indirect
	github.com/gen2brain/heic v0.4.5 // indirect
	github.com/tetratelabs/wazero v1.9.0 // indirect
	golang.org/x/image v0.47.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
