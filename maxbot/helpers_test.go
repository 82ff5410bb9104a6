package maxbot

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/memkv"
	"github.com/portrait-dev/portrait/maxbot/botfake"
)

// memKV is the engines' in-memory KV.
type memKV = memkv.KV

func newMemKV() *memKV { return memkv.New() }

type sink struct {
	mu      sync.Mutex
	states  []portrait.State
	changes int
}

func (s *sink) StateChanged(_ portrait.InstanceID, st portrait.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, st)
}

func (s *sink) PictureChanged(portrait.InstanceID, portrait.PictureChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes++
}

func (s *sink) States() []portrait.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]portrait.State(nil), s.states...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const (
	testInstance portrait.InstanceID = 1101000002
	testToken                        = "f9LHodD0cOKLM3i0Ls5gTRm5e9s0tm7b4z9vfd7yQ6c"
	botID                            = 229229229
)

var (
	botPic   = []byte("\xff\xd8\xff bot")
	alicePic = []byte("\xff\xd8\xff alice")
	bobPic   = []byte("\xff\xd8\xff bob")
	teamPic  = []byte("\xff\xd8\xff team")
)

type rig struct {
	t    *testing.T
	srv  *botfake.Server
	kv   *memKV
	e    *Engine
	s    *session
	sink *sink
	logs *syncBuffer
}

func newRig(t *testing.T, withToken bool, tune ...func(*Options)) *rig {
	t.Helper()
	srv := botfake.New(testToken, botfake.Bot{ID: botID, Name: "Portrait", Picture: botPic}, 30)
	t.Cleanup(srv.Close)
	srv.AddUser(botfake.User{ID: 10000001, Name: "Alice", Picture: alicePic}, true) // a dialog
	srv.AddUser(botfake.User{ID: 10000002, Name: "Bob", Picture: bobPic}, false)    // in Team
	srv.AddUser(botfake.User{ID: 10000003, Name: "Carol"}, true)                    // no picture
	srv.AddUser(botfake.User{ID: 10000004, Name: "Dan", Picture: bobPic}, false)    // only in Club
	srv.AddUser(botfake.User{ID: 10000005, Name: "Eve", Picture: bobPic}, false)    // nowhere
	srv.AddChat(botfake.Chat{ID: -10000000000001, Title: "Team", Picture: teamPic, Members: []int64{10000002}, BotMember: true, BotAdmin: true, BotCanEdit: true})
	srv.AddChat(botfake.Chat{ID: -10000000000002, Title: "Club", Members: []int64{10000004}, BotMember: true})
	srv.AddChat(botfake.Chat{ID: -10000000000003, Title: "Staff", BotMember: true, BotAdmin: true})
	srv.AddChat(botfake.Chat{ID: -10000000000004, Title: "Other", Picture: teamPic})
	r := &rig{t: t, srv: srv, kv: newMemKV(), sink: &sink{}, logs: &syncBuffer{}}
	if withToken {
		if err := SetToken(context.Background(), r.kv, testInstance, testToken); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{
		BaseURL:         srv.URL(),
		RootCAs:         srv.CertPool(),
		PictureHosts:    []string{srv.Host()},
		RequestTimeout:  2 * time.Second,
		DownloadTimeout: 2 * time.Second,
		RetryMin:        10 * time.Millisecond,
		RetryMax:        100 * time.Millisecond,
		NotReadyWait:    10 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range tune {
		f(&opts)
	}
	r.e = New(r.kv, opts)
	t.Cleanup(func() { _ = r.e.Close() })
	return r
}

func (r *rig) open() *session {
	r.t.Helper()
	sess, err := r.e.Open(context.Background(), portrait.Instance{ID: testInstance, Type: portrait.TypeMAX, Engine: Name}, r.sink)
	if err != nil {
		r.t.Fatal(err)
	}
	r.s = sess.(*session)
	return r.s
}

func (r *rig) waitState(st portrait.State) {
	r.t.Helper()
	eventually(r.t, func() bool { return r.s.State() == st }, "state "+string(st)+" (now "+string(r.s.State())+")")
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func chatID(s string) portrait.ChatID { return portrait.MustChatID(portrait.TypeMAX, s) }
