package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

func TestCDNURLRule(t *testing.T) {
	cases := map[string]bool{
		"https://pps.whatsapp.net/v/t61.24694-24/123_456_n.jpg?ccb=11-4&oh=01_AQ&oe=65A1B2C3&_nc_cat=1": true,
		"https://mmg.whatsapp.net/v/t62/x.jpg":                                                          true,
		"https://media-arn2-1.cdn.whatsapp.net/v/x.jpg":                                                 true,
		"https://PPS.WhatsApp.NET/v/x.jpg":                                                              true,
		"https://pps.whatsapp.net:443/v/x.jpg":                                                          true,
		"http://pps.whatsapp.net/v/x.jpg":                                                               false,
		"https://whatsapp.net/v/x.jpg":                                                                  false,
		"https://pps.whatsapp.net.evil.example/x.jpg":                                                   false,
		"https://evilwhatsapp.net/x.jpg":                                                                false,
		"https://evil.example/x.jpg?h=pps.whatsapp.net":                                                 false,
		"https://evil.example/.whatsapp.net":                                                            false,
		"https://pps.whatsapp.net:8443/x.jpg":                                                           false,
		"https://user:pw@pps.whatsapp.net/x.jpg":                                                        false,
		"https://127.0.0.1/x.jpg":                                                                       false,
		"https://pps.whatsapp.com/x.jpg":                                                                false,
		"ftp://pps.whatsapp.net/x.jpg":                                                                  false,
		"https://pps.whatsapp.net./x.jpg":                                                               false,
		"https://169.254.169.254/latest/meta-data?.whatsapp.net":                                        false,
	}
	for raw, want := range cases {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := cdnURL(u); got != want {
			t.Errorf("cdnURL(%s) = %v, want %v", raw, got, want)
		}
	}
}

func TestDownloadRefusesTestServerUnderProductionRule(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(jpegBytes)
	}))
	defer srv.Close()
	e := newEngine(newMemKV(), Options{Logger: testLogger()})
	e.http = e.newHTTPClient(srv.Client().Transport) // trusts the server; the rule still applies
	if _, err := e.download(context.Background(), srv.URL+"/pic"); !errors.Is(err, ErrRefusedURL) {
		t.Fatalf("download from %s = %v, want ErrRefusedURL", srv.URL, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the refused server was contacted")
	}
	// Allowed by the test's rule, it works.
	allowCDN(e, srv)
	data, err := e.download(context.Background(), srv.URL+"/pic")
	if err != nil || !bytes.Equal(data, jpegBytes) {
		t.Fatalf("download = %d bytes, %v", len(data), err)
	}
}

func TestDownloadLimits(t *testing.T) {
	srv := cdn(t)
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(jpegBytes)
	}))
	defer other.Close()
	mux := http.NewServeMux()
	redirector := httptest.NewTLSServer(mux)
	defer redirector.Close()
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/pic", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.Host+"/pic", http.StatusFound)
	})

	cases := []struct {
		name    string
		srv     *httptest.Server
		path    string
		want    []byte
		wantErr error
	}{
		{name: "picture", srv: srv, path: "/pic", want: jpegBytes},
		{name: "exactly the limit", srv: srv, path: "/exact", want: make([]byte, 512)},
		{name: "too large (Content-Length)", srv: srv, path: "/big", wantErr: ErrPictureTooLarge},
		{name: "too large (chunked)", srv: srv, path: "/big-chunked", wantErr: ErrPictureTooLarge},
		{name: "no answer in time", srv: srv, path: "/slow", wantErr: portrait.ErrUpstreamTimeout},
		{name: "body stalls", srv: srv, path: "/slow-body", wantErr: portrait.ErrUpstreamTimeout},
		{name: "expired URL", srv: srv, path: "/gone", wantErr: errAny},
		{name: "redirect on the same host", srv: srv, path: "/redirect-same", want: jpegBytes},
		{name: "redirect to another host", srv: redirector, path: "/elsewhere", wantErr: ErrRefusedURL},
		{name: "redirect to http", srv: redirector, path: "/plain", wantErr: ErrRefusedURL},
		{name: "redirect loop", srv: redirector, path: "/loop", wantErr: ErrRefusedURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(newMemKV(), Options{Logger: testLogger(), MaxPictureBytes: 512, DownloadTimeout: 100 * time.Millisecond})
			allowCDN(e, tc.srv)
			start := time.Now()
			data, err := e.download(context.Background(), tc.srv.URL+tc.path+"?oe=65A1B2C3&secret=signature")
			if time.Since(start) > 2*time.Second {
				t.Errorf("the download took %v", time.Since(start))
			}
			switch {
			case tc.wantErr == errAny:
				if err == nil {
					t.Fatal("no error")
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			}
			if err != nil && strings.Contains(err.Error(), "signature") {
				t.Errorf("the error leaks the signed URL: %v", err)
			}
			if !bytes.Equal(data, tc.want) {
				t.Fatalf("got %d bytes, want %d", len(data), len(tc.want))
			}
		})
	}
}
