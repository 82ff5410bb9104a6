package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// sentinels are the outcomes a caller tells apart with errors.Is.
var sentinels = []error{
	portrait.ErrPictureHidden, portrait.ErrPictureNotSet, portrait.ErrNoAccount,
	portrait.ErrUpstreamRateLimit, portrait.ErrUpstreamTimeout, portrait.ErrGroupNotFound,
	portrait.ErrNotGroupMember, portrait.ErrNotGroupAdmin, portrait.ErrNotAuthorized,
	portrait.ErrStarting, portrait.ErrAlreadyLinked,
}

// checkErr asserts that err matches every error of want and no other
// sentinel; want empty means no error.
func checkErr(t *testing.T, err error, want ...error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("error %q does not match %q", err, w)
		}
	}
next:
	for _, s := range sentinels {
		for _, w := range want {
			if s == w {
				continue next
			}
		}
		if errors.Is(err, s) {
			t.Errorf("error %q also matches %q", err, s)
		}
	}
}

var jpegBytes = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00 a picture on the CDN \xff\xd9")

// cdn is a TLS server standing in for pps.whatsapp.net.
func cdn(t *testing.T) *httptest.Server {
	t.Helper()
	stop := make(chan struct{}) // releases the slow handlers at the end
	mux := http.NewServeMux()
	mux.HandleFunc("/pic", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(jpegBytes)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(make([]byte, 1000))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			_, _ = w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 512))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-stop
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write(make([]byte, 10))
		w.(http.Flusher).Flush()
		<-stop
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "URL signature expired", http.StatusForbidden)
	})
	mux.HandleFunc("/redirect-same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/pic", http.StatusFound)
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	return srv
}

// allowCDN lets e download from srv (and nowhere else).
func allowCDN(e *Engine, srv *httptest.Server) {
	host := srv.Listener.Addr().String()
	e.allowURL = func(u *url.URL) bool { return u.Host == host }
	e.http = e.newHTTPClient(srv.Client().Transport)
}

// answer is one reply of the substitute to a query.
type answer struct {
	info *types.ProfilePictureInfo
	id   string
	gi   *types.GroupInfo
	err  error
	hang bool // no answer: wait for the context
}

func (a answer) wait(ctx context.Context) error {
	if a.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func pictureAnswers(as ...answer) func(context.Context, types.JID, whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error) {
	n := 0
	return func(ctx context.Context, _ types.JID, _ whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error) {
		if n >= len(as) {
			return nil, errors.New("unexpected query")
		}
		a := as[n]
		n++
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
		return a.info, a.err
	}
}

func jid(s string) types.JID {
	j, err := types.ParseJID(s)
	if err != nil {
		panic(err)
	}
	return j
}

func TestPictureOutcomes(t *testing.T) {
	srv := cdn(t)
	picURL := srv.URL + "/pic?oe=65A1B2C3"
	pic := func(id string) *types.ProfilePictureInfo {
		return &types.ProfilePictureInfo{ID: id, URL: picURL, Type: "image", DirectPath: "/v/t61/x.jpg"}
	}
	const group = "120363043968066561@g.us"
	plain := func(j string) pictureCall { return pictureCall{JID: jid(j)} }
	existing := func(j, id string) pictureCall {
		return pictureCall{JID: jid(j), Params: whatsmeow.GetProfilePictureParams{ExistingID: id}}
	}
	community := func(j string) pictureCall {
		return pictureCall{JID: jid(j), Params: whatsmeow.GetProfilePictureParams{IsCommunity: true}}
	}

	cases := []struct {
		name      string
		chat      string
		existing  string
		answers   []answer
		reqTO     time.Duration // Options.RequestTimeout, when set
		want      portrait.RemotePicture
		wantErr   []error
		wantIs    error // a whatsmeow error that must stay visible
		wantCalls []pictureCall
	}{
		{name: "contact picture", chat: "79001230001@c.us", answers: []answer{{info: pic("1700000001")}},
			want:      portrait.RemotePicture{ID: "1700000001", Data: jpegBytes, URL: picURL},
			wantCalls: []pictureCall{plain("79001230001@s.whatsapp.net")}},
		{name: "lid contact", chat: "123456789@lid", answers: []answer{{info: pic("1700000002")}},
			want:      portrait.RemotePicture{ID: "1700000002", Data: jpegBytes, URL: picURL},
			wantCalls: []pictureCall{plain("123456789@lid")}},
		{name: "own number", chat: "79001234567@c.us", answers: []answer{{info: pic("1700000003")}},
			want:      portrait.RemotePicture{ID: "1700000003", Data: jpegBytes, URL: picURL},
			wantCalls: []pictureCall{plain("79001234567@s.whatsapp.net")}},
		{name: "group", chat: group, answers: []answer{{info: pic("1700000004")}},
			want:      portrait.RemotePicture{ID: "1700000004", Data: jpegBytes, URL: picURL},
			wantCalls: []pictureCall{plain(group)}},
		{name: "hidden (401 as whatsmeow wraps it)", chat: "79001230003@c.us",
			answers: []answer{{err: wrapIQ(whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)}},
			wantErr: []error{portrait.ErrPictureHidden}, wantIs: whatsmeow.ErrIQNotAuthorized,
			wantCalls: []pictureCall{plain("79001230003@s.whatsapp.net")}},
		{name: "hidden (bare)", chat: "79001230003@c.us", answers: []answer{{err: whatsmeow.ErrProfilePictureUnauthorized}},
			wantErr: []error{portrait.ErrPictureHidden}},
		{name: "not set (404)", chat: "79001230004@c.us",
			answers: []answer{{err: wrapIQ(whatsmeow.ErrProfilePictureNotSet, whatsmeow.ErrIQNotFound)}},
			wantErr: []error{portrait.ErrPictureNotSet}},
		{name: "not set (204) or no account", chat: "79001230005@c.us", answers: []answer{{err: whatsmeow.ErrProfilePictureNotSet}},
			wantErr: []error{portrait.ErrPictureNotSet}},
		{name: "unchanged: nil info, nil error", chat: "79001230001@c.us", existing: "1700000001", answers: []answer{{}},
			want:      portrait.RemotePicture{ID: "1700000001", Unchanged: true},
			wantCalls: []pictureCall{existing("79001230001@s.whatsapp.net", "1700000001")}},
		{name: "unchanged: same id", chat: "79001230001@c.us", existing: "1700000001", answers: []answer{{info: pic("1700000001")}},
			want: portrait.RemotePicture{ID: "1700000001", Unchanged: true}},
		{name: "changed since existing id", chat: "79001230001@c.us", existing: "1600000000", answers: []answer{{info: pic("1700000001")}},
			want: portrait.RemotePicture{ID: "1700000001", Data: jpegBytes, URL: picURL}},
		{name: "nil info without existing id", chat: "79001230001@c.us", answers: []answer{{}},
			wantErr: []error{errAny}},
		{name: "rate-overlimit", chat: "79001230001@c.us", answers: []answer{{err: whatsmeow.ErrIQRateOverLimit}},
			wantErr: []error{portrait.ErrUpstreamRateLimit}, wantIs: whatsmeow.ErrIQRateOverLimit},
		{name: "info query timed out", chat: "79001230001@c.us", answers: []answer{{err: whatsmeow.ErrIQTimedOut}},
			wantErr: []error{portrait.ErrUpstreamTimeout}},
		{name: "no answer within RequestTimeout", chat: "79001230001@c.us", answers: []answer{{hang: true}}, reqTO: 20 * time.Millisecond,
			wantErr: []error{portrait.ErrUpstreamTimeout}, wantIs: context.DeadlineExceeded},
		{name: "not connected", chat: "79001230001@c.us", answers: []answer{{err: whatsmeow.ErrNotConnected}},
			wantErr: []error{portrait.ErrStarting}},
		{name: "disconnected during the query", chat: "79001230001@c.us", answers: []answer{{err: whatsmeow.ErrIQDisconnected}},
			wantErr: []error{portrait.ErrStarting}},
		{name: "not logged in", chat: "79001230001@c.us", answers: []answer{{err: whatsmeow.ErrNotLoggedIn}},
			wantErr: []error{portrait.ErrNotAuthorized}},
		{name: "server error", chat: "79001230001@c.us", answers: []answer{{err: whatsmeow.ErrIQInternalServerError}},
			wantErr: []error{errAny}, wantIs: whatsmeow.ErrIQInternalServerError},
		{name: "community: 401 as a group, asked again as a community", chat: group,
			answers:   []answer{{err: wrapIQ(whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)}, {info: pic("1700000005")}},
			want:      portrait.RemotePicture{ID: "1700000005", Data: jpegBytes, URL: picURL},
			wantCalls: []pictureCall{plain(group), community(group)}},
		{name: "community without picture", chat: group,
			answers: []answer{{err: wrapIQ(whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)}, {err: whatsmeow.ErrProfilePictureNotSet}},
			wantErr: []error{portrait.ErrPictureNotSet}, wantCalls: []pictureCall{plain(group), community(group)}},
		{name: "group 401, not a community either", chat: group,
			answers: []answer{{err: wrapIQ(whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)}, {err: whatsmeow.ErrIQBadRequest}},
			wantErr: []error{portrait.ErrPictureHidden}, wantCalls: []pictureCall{plain(group), community(group)}},
		{name: "group 401, community query rate-limited", chat: group,
			answers: []answer{{err: wrapIQ(whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)}, {err: whatsmeow.ErrIQRateOverLimit}},
			wantErr: []error{portrait.ErrUpstreamRateLimit}},
		{name: "contact 401 is not retried", chat: "79001230003@c.us",
			answers: []answer{{err: wrapIQ(whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)}},
			wantErr: []error{portrait.ErrPictureHidden}, wantCalls: []pictureCall{plain("79001230003@s.whatsapp.net")}},
		{name: "URL not https", chat: "79001230001@c.us",
			answers: []answer{{info: &types.ProfilePictureInfo{ID: "1", URL: "http://pps.whatsapp.net/v/x.jpg"}}},
			wantErr: []error{ErrRefusedURL}},
		{name: "URL on another host", chat: "79001230001@c.us",
			answers: []answer{{info: &types.ProfilePictureInfo{ID: "1", URL: "https://example.com/x.jpg"}}},
			wantErr: []error{ErrRefusedURL}},
		{name: "picture without URL", chat: "79001230001@c.us",
			answers: []answer{{info: &types.ProfilePictureInfo{ID: "1"}}},
			wantErr: []error{errAny}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.reqTO > 0 {
				h.e.opts.RequestTimeout = tc.reqTO
			}
			allowCDN(h.e, srv)
			s, c := h.authorized()
			c.set(func(c *fakeClient) { c.pictureFn = pictureAnswers(tc.answers...) })
			got, err := s.Picture(context.Background(), portrait.MustChatID(portrait.TypeWhatsApp, tc.chat), tc.existing)
			switch {
			case len(tc.wantErr) == 1 && tc.wantErr[0] == errAny:
				if err == nil {
					t.Fatal("no error")
				}
				checkErr(t, err, err) // and no sentinel
			default:
				checkErr(t, err, tc.wantErr...)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q hides %q", err, tc.wantIs)
			}
			if got.ID != tc.want.ID || got.URL != tc.want.URL || got.Unchanged != tc.want.Unchanged || !bytes.Equal(got.Data, tc.want.Data) {
				t.Errorf("Picture = {ID %q URL %q Unchanged %v %d bytes}, want {ID %q URL %q Unchanged %v %d bytes}",
					got.ID, got.URL, got.Unchanged, len(got.Data), tc.want.ID, tc.want.URL, tc.want.Unchanged, len(tc.want.Data))
			}
			if tc.wantCalls != nil {
				c.mu.Lock()
				calls := c.pictureCalls
				c.mu.Unlock()
				if fmt.Sprint(calls) != fmt.Sprint(tc.wantCalls) {
					t.Errorf("queries %+v, want %+v", calls, tc.wantCalls)
				}
			}
		})
	}
}

func TestPictureCommunityIsRemembered(t *testing.T) {
	srv := cdn(t)
	h := newHarness(t)
	allowCDN(h.e, srv)
	s, c := h.authorized()
	info := &types.ProfilePictureInfo{ID: "1", URL: srv.URL + "/pic"}
	c.set(func(c *fakeClient) {
		c.pictureFn = func(_ context.Context, _ types.JID, p whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error) {
			if !p.IsCommunity {
				return nil, wrapIQ(whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)
			}
			return info, nil
		}
	})
	chat := portrait.MustChatID(portrait.TypeWhatsApp, "120363043968066561@g.us")
	for range 2 {
		if _, err := s.Picture(context.Background(), chat, ""); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pictureCalls) != 3 || !c.pictureCalls[2].Params.IsCommunity {
		t.Fatalf("queries %+v: the second lookup should ask as a community at once", c.pictureCalls)
	}
}

func TestPictureNotReady(t *testing.T) {
	chat := portrait.MustChatID(portrait.TypeWhatsApp, "79001230001@c.us")
	h := newHarness(t)
	s := h.open()
	if _, err := s.Picture(context.Background(), chat, ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Fatalf("unlinked: %v", err)
	}
	h2 := newHarness(t)
	block := make(chan struct{})
	defer close(block)
	h2.setPrepare(func(c *fakeClient) { c.connectBlock = block })
	h2.linked()
	s2 := h2.open()
	if _, err := s2.Picture(context.Background(), chat, ""); !errors.Is(err, portrait.ErrStarting) {
		t.Fatalf("starting: %v", err)
	}
	if _, err := s2.SetPicture(context.Background(), portrait.ChatID{}, jpegBytes, nil); !errors.Is(err, portrait.ErrStarting) {
		t.Fatalf("set while starting: %v", err)
	}
}

func groupInfo(locked bool, participants ...types.GroupParticipant) *types.GroupInfo {
	gi := &types.GroupInfo{JID: jid("120363043968066561@g.us"), Participants: participants}
	gi.IsLocked = locked
	return gi
}

var (
	selfMember = types.GroupParticipant{JID: ownLID, PhoneNumber: ownJID.ToNonAD(), LID: ownLID}
	selfByPN   = types.GroupParticipant{JID: ownJID.ToNonAD()}
	selfAdmin  = types.GroupParticipant{JID: ownLID, LID: ownLID, IsAdmin: true}
	other      = types.GroupParticipant{JID: jid("79001230009@s.whatsapp.net"), IsAdmin: true}
)

func TestSetPictureOutcomes(t *testing.T) {
	const group = "120363043968066561@g.us"
	ok := answer{id: "1700000100"}
	notFound := answer{err: wrapIQ(whatsmeow.ErrGroupNotFound, whatsmeow.ErrIQNotFound)}
	notIn := answer{err: wrapIQ(whatsmeow.ErrNotInGroup, whatsmeow.ErrIQForbidden)}
	cases := []struct {
		name       string
		chat       string // "" is the own picture
		jpeg       []byte
		set        answer
		info       *answer // GetGroupInfo's answer; nil: it must not be asked
		reqTO      time.Duration
		callerTO   time.Duration
		want       string
		wantErr    []error
		wantIs     error
		wantTarget *types.JID
		noCall     bool
	}{
		{name: "own picture", set: ok, want: "1700000100", wantTarget: &types.EmptyJID},
		{name: "own number", chat: "79001234567@c.us", set: ok, want: "1700000100", wantTarget: &types.EmptyJID},
		{name: "own lid", chat: "123456789012345@lid", set: ok, want: "1700000100", wantTarget: &types.EmptyJID},
		{name: "group", chat: group, set: ok, want: "1700000100", wantTarget: ptr(jid(group))},
		{name: "a contact's picture", chat: "79001230001@c.us", set: ok, wantErr: []error{errAny}, noCall: true},
		{name: "no bytes: removes the picture", chat: group, jpeg: []byte{}, set: ok, want: "1700000100", wantTarget: ptr(jid(group))},
		{name: "rate-overlimit", chat: group, set: answer{err: whatsmeow.ErrIQRateOverLimit}, wantErr: []error{portrait.ErrUpstreamRateLimit}},
		{name: "own rate-overlimit", set: answer{err: whatsmeow.ErrIQRateOverLimit}, wantErr: []error{portrait.ErrUpstreamRateLimit}},
		{name: "not a valid image (406)", chat: group, set: answer{err: wrapIQ(whatsmeow.ErrInvalidImageFormat, whatsmeow.ErrIQNotAcceptable)},
			wantErr: []error{errAny}, wantIs: whatsmeow.ErrInvalidImageFormat},
		{name: "not in group", chat: group, set: notIn, wantErr: []error{portrait.ErrNotGroupMember}},
		{name: "group not found", chat: group, set: notFound, wantErr: []error{portrait.ErrGroupNotFound}},
		{name: "item-not-found (404)", chat: group, set: answer{err: whatsmeow.ErrIQNotFound}, wantErr: []error{portrait.ErrGroupNotFound}},
		{name: "401, member of a locked group", chat: group, set: answer{err: whatsmeow.ErrIQNotAuthorized},
			info: &answer{gi: groupInfo(true, other, selfMember)}, wantErr: []error{portrait.ErrNotGroupAdmin}},
		{name: "403, member found by phone number", chat: group, set: answer{err: whatsmeow.ErrIQForbidden},
			info: &answer{gi: groupInfo(true, selfByPN)}, wantErr: []error{portrait.ErrNotGroupAdmin}},
		{name: "403, not in group", chat: group, set: answer{err: whatsmeow.ErrIQForbidden}, info: &notIn,
			wantErr: []error{portrait.ErrNotGroupMember}},
		{name: "401, group gone", chat: group, set: answer{err: whatsmeow.ErrIQNotAuthorized}, info: &notFound,
			wantErr: []error{portrait.ErrGroupNotFound}},
		{name: "403, not among the participants", chat: group, set: answer{err: whatsmeow.ErrIQForbidden},
			info: &answer{gi: groupInfo(false, other)}, wantErr: []error{portrait.ErrNotGroupMember}},
		{name: "401 although admin", chat: group, set: answer{err: whatsmeow.ErrIQNotAuthorized},
			info: &answer{gi: groupInfo(true, selfAdmin)}, wantErr: []error{portrait.ErrNotGroupAdmin}},
		{name: "403, group info times out", chat: group, set: answer{err: whatsmeow.ErrIQForbidden},
			info: &answer{err: whatsmeow.ErrIQTimedOut}, wantErr: []error{portrait.ErrNotGroupAdmin}},
		{name: "time-out, group info times out too (bad group id)", chat: group, set: answer{err: whatsmeow.ErrIQTimedOut},
			info: &answer{err: whatsmeow.ErrIQTimedOut}, wantErr: []error{portrait.ErrGroupNotFound, portrait.ErrUpstreamTimeout}},
		{name: "time-out, group info fine", chat: group, set: answer{err: whatsmeow.ErrIQTimedOut},
			info: &answer{gi: groupInfo(false, selfMember)}, wantErr: []error{portrait.ErrUpstreamTimeout}},
		{name: "time-out, group not found", chat: group, set: answer{err: whatsmeow.ErrIQTimedOut}, info: &notFound,
			wantErr: []error{portrait.ErrGroupNotFound}},
		{name: "no answer within RequestTimeout, nor about the group", chat: group, set: answer{hang: true},
			info: &answer{hang: true}, reqTO: 20 * time.Millisecond, wantErr: []error{portrait.ErrGroupNotFound, portrait.ErrUpstreamTimeout}},
		{name: "the caller's time is up: no diagnosis", chat: group, set: answer{hang: true}, callerTO: 20 * time.Millisecond,
			wantErr: []error{portrait.ErrUpstreamTimeout}},
		{name: "own picture times out", set: answer{err: whatsmeow.ErrIQTimedOut}, wantErr: []error{portrait.ErrUpstreamTimeout}},
		{name: "own picture 401", set: answer{err: whatsmeow.ErrIQNotAuthorized}, wantErr: []error{errAny}, wantIs: whatsmeow.ErrIQNotAuthorized},
		{name: "not connected", chat: group, set: answer{err: whatsmeow.ErrNotConnected}, wantErr: []error{portrait.ErrStarting}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.reqTO > 0 {
				h.e.opts.RequestTimeout = tc.reqTO
			}
			s, c := h.authorized()
			c.set(func(c *fakeClient) {
				c.setFn = func(ctx context.Context, _ types.JID, _ []byte) (string, error) {
					if err := tc.set.wait(ctx); err != nil {
						return "", err
					}
					return tc.set.id, tc.set.err
				}
				c.groupFn = func(ctx context.Context, _ types.JID) (*types.GroupInfo, error) {
					if tc.info == nil {
						t.Error("GetGroupInfo was asked")
						return nil, errors.New("unexpected")
					}
					if err := tc.info.wait(ctx); err != nil {
						return nil, err
					}
					return tc.info.gi, tc.info.err
				}
			})
			ctx := context.Background()
			if tc.callerTO > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.callerTO)
				defer cancel()
			}
			var chat portrait.ChatID
			if tc.chat != "" {
				chat = portrait.MustChatID(portrait.TypeWhatsApp, tc.chat)
			}
			data := jpegBytes
			if tc.jpeg != nil {
				data = tc.jpeg
			}
			got, err := s.SetPicture(ctx, chat, data, []byte("preview"))
			if len(tc.wantErr) == 1 && tc.wantErr[0] == errAny {
				checkErr(t, err, err)
			} else {
				checkErr(t, err, tc.wantErr...)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q hides %q", err, tc.wantIs)
			}
			if got != tc.want {
				t.Errorf("id %q, want %q", got, tc.want)
			}
			c.mu.Lock()
			calls := c.setCalls
			c.mu.Unlock()
			switch {
			case tc.noCall && len(calls) != 0:
				t.Errorf("SetGroupPhoto called: %v", calls)
			case !tc.noCall && len(calls) != 1:
				t.Errorf("SetGroupPhoto called %d times", len(calls))
			case tc.wantTarget != nil && calls[0] != *tc.wantTarget:
				t.Errorf("SetGroupPhoto(%v), want %v", calls[0], *tc.wantTarget)
			}
		})
	}
}

var errAny = errors.New("any error that is no sentinel")

func ptr[T any](v T) *T { return &v }
