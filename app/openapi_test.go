package app_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/portrait-dev/portrait/client"
	"github.com/portrait-dev/portrait/greenapi"
)

// Every reply the end-to-end tests receive from a GREEN-API method is
// validated against the OpenAPI document the server serves, so that a
// handler that answers something the document does not describe fails the
// tests. TestMain puts the check into http.DefaultClient, which the tests'
// raw requests use; newClient gives the client package a checked one.

var apiCheck struct {
	mu        sync.Mutex
	v         validator.Validator
	validated int
	failures  []string
}

// apiPath matches the canonical GREEN-API paths the document describes.
var apiPath = regexp.MustCompile(`^(/v3)?/waInstance[0-9]+/([A-Za-z]+)/[^/]+(/[0-9]+)?$`)

func TestMain(m *testing.M) {
	flag.Parse()
	doc, err := libopenapi.NewDocument(greenapi.OpenAPI())
	if err != nil {
		fmt.Fprintln(os.Stderr, "the OpenAPI document does not parse:", err)
		os.Exit(1)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		fmt.Fprintln(os.Stderr, "the OpenAPI document cannot validate:", errs)
		os.Exit(1)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			fmt.Fprintln(os.Stderr, "the OpenAPI document is invalid:", e.Message, e.Reason)
		}
		os.Exit(1)
	}
	apiCheck.v = v
	http.DefaultClient.Transport = &validating{next: http.DefaultTransport}
	code := m.Run()
	apiCheck.mu.Lock()
	defer apiCheck.mu.Unlock()
	if len(apiCheck.failures) > 0 {
		fmt.Fprintf(os.Stderr, "%d replies do not match /openapi.json:\n", len(apiCheck.failures))
		for i, f := range apiCheck.failures {
			if i == 20 {
				fmt.Fprintln(os.Stderr, "…")
				break
			}
			fmt.Fprintln(os.Stderr, " ", f)
		}
		code = 1
	}
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && apiCheck.validated < 100 {
		fmt.Fprintf(os.Stderr, "only %d replies were validated against /openapi.json; the check is not working\n", apiCheck.validated)
		code = 1
	}
	os.Exit(code)
}

// newClient is client.New with the replies validated against the
// document.
func newClient(apiURL string, id int64, token string, opts ...client.Option) *client.Client {
	hc := &http.Client{
		Transport:     &validating{next: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return client.New(apiURL, id, token, append([]client.Option{client.WithHTTPClient(hc)}, opts...)...)
}

// known reports whether name is a method of the table, as written there.
func known(name string) bool {
	for _, m := range greenapi.Methods {
		if m.Name == name {
			return true
		}
	}
	return false
}

// validating checks the replies of GREEN-API calls against the document.
type validating struct{ next http.RoundTripper }

func (t *validating) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || req.Method == http.MethodHead {
		return resp, err
	}
	m := apiPath.FindStringSubmatch(req.URL.Path)
	if m == nil || !known(m[2]) {
		return resp, nil
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil
	}
	check := *resp
	check.Body = io.NopCloser(bytes.NewReader(body))
	apiCheck.mu.Lock()
	defer apiCheck.mu.Unlock()
	ok, verrs := apiCheck.v.ValidateHttpResponse(req, &check)
	apiCheck.validated++
	if !ok && len(verrs) > 0 && verrs[0].ValidationType == "path" && (resp.StatusCode == 404 || resp.StatusCode == 405) {
		// A verb or path the document has no operation for (the tests of
		// wrong calls): the reply must still be GREEN-API's error.
		var e map[string]any
		if json.Unmarshal(body, &e) == nil && e["statusCode"] != nil && e["timestamp"] != nil && e["path"] != nil && e["message"] != nil {
			return resp, nil
		}
	}
	if !ok {
		var msgs []string
		for _, e := range verrs {
			msgs = append(msgs, e.Message+": "+e.Reason)
		}
		apiCheck.failures = append(apiCheck.failures, fmt.Sprintf("%s %s → %d %.200s: %s", req.Method, greenapi.RedactPath(req.URL.Path), resp.StatusCode, body, strings.Join(msgs, "; ")))
	}
	return resp, nil
}

// TestOpenAPIServed: /openapi.json is the document the replies are checked
// against, and it lists every method of the table on its route forms.
func TestOpenAPIServed(t *testing.T) {
	s := start(t)
	code, h, b := raw(t, "GET", s.URL+"/openapi.json", "", nil)
	if code != 200 || h.Get("Content-Type") != "application/json" || !bytes.Equal(b, greenapi.OpenAPI()) {
		t.Fatalf("/openapi.json: %d %s", code, h.Get("Content-Type"))
	}
	for _, m := range greenapi.Methods {
		if !bytes.Contains(b, []byte(`"/waInstance{idInstance}/`+m.Name+`/{apiTokenInstance}`)) && !bytes.Contains(b, []byte(`"/v3/waInstance{idInstance}/`+m.Name+`/{apiTokenInstance}`)) {
			t.Errorf("%s is not in the document", m.Name)
		}
	}
	if code, h, b := raw(t, "GET", s.URL+"/docs", "", nil); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !bytes.Contains(b, []byte("/docs/docs.js")) {
		t.Errorf("/docs: %d %s", code, h.Get("Content-Type"))
	}
}

// TestValidationCatchesDrift: a reply that differs from the document is
// caught (the check itself can fail), and a matching one passes.
func TestValidationCatchesDrift(t *testing.T) {
	body := `{"urlAvatar":5}`
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer fake.Close()
	tr := &validating{next: http.DefaultTransport}
	try := func() (failed bool) {
		apiCheck.mu.Lock()
		before := len(apiCheck.failures)
		apiCheck.mu.Unlock()
		req, _ := http.NewRequest("POST", fake.URL+"/waInstance1101000001/getAvatar/"+strings.Repeat("a", 50), strings.NewReader(`{"chatId":"11001230001@c.us"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		apiCheck.mu.Lock()
		defer apiCheck.mu.Unlock()
		failed = len(apiCheck.failures) > before
		apiCheck.failures = apiCheck.failures[:before] // not a failure of the suite
		return failed
	}
	if !try() {
		t.Error("a getAvatar reply with a number for urlAvatar passed the check")
	}
	body = `{"urlAvatar":"http://x/avatars/a.jpg","available":true}`
	if try() {
		t.Error("a well-formed getAvatar reply failed the check")
	}
}
