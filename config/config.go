// Package config reads portrait's configuration from command-line flags and
// environment variables. Every setting has a flag and a PORTRAIT_* variable;
// a flag wins over the variable, which wins over the default. The table in
// Settings is the single source of docs/configuration.md (a test keeps them
// in step).
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of `portrait serve`.
type Config struct {
	Listen          string
	DataDir         string
	Database        string
	NodeAddr        string
	NodeID          string
	LeaseTTL        time.Duration
	PublicURL       string
	PublicURLGiven  bool // PublicURL was set by flag or environment, not derived from Listen
	AdminToken      string
	AdminOff        bool // --admin-token off (or given empty): no admin API, no console
	SessionIdle     time.Duration
	SessionMax      time.Duration
	MetricsToken    string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration

	CacheTTL       time.Duration
	CacheEntries   int64
	LookupTimeout  time.Duration
	UpstreamURLs   bool
	MaxUploadBytes int64
	MaxPixels      int64
	MaxDecoders    int
	DecodeMemory   int64
	Decoders       string
	RateLimits     map[string]float64 // nil = the GREEN-API defaults; empty = off

	BodyTimeout       time.Duration
	FetchTimeout      time.Duration
	UploadTimeout     time.Duration
	MaxConnsPerClient int64
	AuthFailures      int64

	WebhookTimeout     time.Duration
	WebhookRetention   time.Duration
	QueueMax           int64
	QueueTrimInterval  time.Duration
	WebhookBackoffMin  time.Duration
	WebhookBackoffMax  time.Duration
	WebhookConcurrency int
	WebhookAllow       []netip.Prefix
	ChangeDebounce     time.Duration
	ChangeDebounceMax  time.Duration

	WhatsAppDownloadTimeout time.Duration
	WhatsAppMaxPictureBytes int64
	WhatsAppDeviceName      string
	WhatsAppVersion         string

	MaxURL          string
	MaxAppVersion   string
	MaxRootCA       string
	MaxPictureHosts []string

	MaxBotURL          string
	MaxBotRootCA       string
	MaxBotPictureHosts []string
	MaxBotRateLimit    float64

	SandboxWorld               string
	SandboxLatency             time.Duration
	SandboxPictureCooldown     time.Duration
	SandboxUnknownGroupTimeout time.Duration
	SandboxFaultTimeout        time.Duration
	SandboxFaults              bool
	SandboxStartDelay          time.Duration
	SandboxQRRotate            time.Duration
	SandboxRecord              string
}

// Setting describes one setting: its flag, its environment variable, its
// default as text and what it does.
type Setting struct {
	Flag    string
	Env     string
	Default string
	Usage   string
	set     func(c *Config, v string) error
}

// Settings lists every setting of `portrait serve`, in documentation order.
func Settings() []Setting {
	return []Setting{
		{"listen", "PORTRAIT_LISTEN", "127.0.0.1:8780", "address to listen on (host:port); the default serves this machine only", func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("not host:port: %w", err)
			}
			c.Listen = v
			return nil
		}},
		{"data-dir", "PORTRAIT_DATA_DIR", "./portrait-data", "directory for the SQLite database, stored pictures and the URL key", str(func(c *Config) *string { return &c.DataDir })},
		{"database", "PORTRAIT_DATABASE", "", "empty keeps everything in SQLite and files in --data-dir; a postgres:// URL keeps instances, notifications, engine state and pictures in that PostgreSQL database instead (pool settings such as pool_max_conns=16 go in its query string)", func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
				return errors.New("must be empty (SQLite) or a postgres:// URL")
			}
			c.Database = v
			return nil
		}},
		{"node-addr", "PORTRAIT_NODE_ADDR", "the listen address", "cluster mode (several servers on one --database postgres://…): the host:port the other nodes reach this one at to forward requests for its instances; by default the listen address, with the machine's host name when it listens on every interface (see docs/cluster.md)", func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("not host:port: %w", err)
			}
			c.NodeAddr = v
			return nil
		}},
		{"node-id", "PORTRAIT_NODE_ID", "host:data-dir", "cluster mode: the name of this node, unique in the cluster and the same across its restarts (a restarted node takes its place at once); by default the machine's host name and the absolute data directory", func(c *Config, v string) error {
			if strings.TrimSpace(v) == "" || len(v) > 200 {
				return errors.New("must be 1 to 200 characters")
			}
			c.NodeID = v
			return nil
		}},
		{"lease-ttl", "PORTRAIT_LEASE_TTL", "10s", "cluster mode: how long a node's ownership of an instance lasts unless renewed (a node renews ten times per period); the instances of a node that died are served elsewhere within about this long; every node of a cluster should have the same; at least 1s", func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return errors.New("must be a duration such as 10s")
			}
			if d < time.Second {
				// Rounds run every tenth of the lease but at most every
				// 50 ms: below a second, leases lapse between renewals.
				return errors.New("must be at least 1s: a node renews its leases ten times per lease, and each renewal is a database round trip")
			}
			c.LeaseTTL = d
			return nil
		}},
		{"public-url", "PORTRAIT_PUBLIC_URL", "http://<listen>", "absolute base URL clients reach portrait at; urlAvatar links start with it", func(c *Config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("must be an absolute http:// or https:// URL")
			}
			c.PublicURL, c.PublicURLGiven = strings.TrimRight(v, "/"), true
			return nil
		}},
		{"admin-token", "PORTRAIT_ADMIN_TOKEN", "generated", "the token of the admin API under /admin/ ('Authorization: Bearer <token>') and of the console at /console; by default portrait makes one on first start, prints it once and keeps only its SHA-256 in the data directory (admin-token.sha256), or on PostgreSQL in the database, shared by every node of a cluster with the console sign-ins (`portrait admin rotate-token` replaces it); a token given here wins; 'off' switches the admin API and the console off", func(c *Config, v string) error {
			c.AdminToken, c.AdminOff = v, v == "" || v == "off"
			if c.AdminOff {
				c.AdminToken = ""
			}
			return nil
		}},
		{"console-session-idle", "PORTRAIT_CONSOLE_SESSION_IDLE", "30m", "a console sign-in not used for this long ends (an open console page uses it every few seconds)", positiveDur(func(c *Config) *time.Duration { return &c.SessionIdle })},
		{"console-session-max", "PORTRAIT_CONSOLE_SESSION_MAX", "12h", "a console sign-in ends this long after it began, used or not; signing out ends it at once, and a new admin token (or, on SQLite, a restart) ends them all", positiveDur(func(c *Config) *time.Duration { return &c.SessionMax })},
		{"metrics-token", "PORTRAIT_METRICS_TOKEN", "", "when set, /metrics answers only requests with 'Authorization: Bearer <token>'; empty leaves it open (as /healthz is)", str(func(c *Config) *string { return &c.MetricsToken })},
		{"log-level", "PORTRAIT_LOG_LEVEL", "info", "debug, info, warn or error; debug logs every request (tokens redacted)", oneOf(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
		{"log-format", "PORTRAIT_LOG_FORMAT", "text", "text or json", oneOf(func(c *Config) *string { return &c.LogFormat }, "text", "json")},
		{"shutdown-timeout", "PORTRAIT_SHUTDOWN_TIMEOUT", "15s", "how long a graceful shutdown waits for requests in flight", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},

		{"cache-ttl", "PORTRAIT_CACHE_TTL", "10m", "how long a getAvatar result is served from memory before the messenger is asked again (an unchanged picture is not downloaded again)", dur(func(c *Config) *time.Duration { return &c.CacheTTL })},
		{"cache-entries", "PORTRAIT_CACHE_ENTRIES", "1000000", "most getAvatar results kept in memory (about 200 bytes each); past it expired and then arbitrary entries make room", i64(func(c *Config) *int64 { return &c.CacheEntries })},
		{"lookup-timeout", "PORTRAIT_LOOKUP_TIMEOUT", "20s", "how long one picture lookup may take before getAvatar answers 504", dur(func(c *Config) *time.Duration { return &c.LookupTimeout })},
		{"upstream-urls", "PORTRAIT_UPSTREAM_URLS", "false", "true answers getAvatar with the messenger's own picture URL (which expires), as GREEN-API does, when the engine has one; portrait still keeps its copy", boolean(func(c *Config) *bool { return &c.UpstreamURLs })},
		{"max-upload-bytes", "PORTRAIT_MAX_UPLOAD_BYTES", "33554432", "largest setProfilePicture/setGroupPicture request body in bytes (32 MiB); larger ones get 413", i64(func(c *Config) *int64 { return &c.MaxUploadBytes })},
		{"max-pixels", "PORTRAIT_MAX_PIXELS", "60000000", "largest picture in pixels (width × height, read from the header before decoding); larger ones get 400", i64(func(c *Config) *int64 { return &c.MaxPixels })},
		{"max-decoders", "PORTRAIT_MAX_DECODERS", "GOMAXPROCS", "how many pictures may be decoded at once", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return errors.New("must be a whole number ≥ 1")
			}
			c.MaxDecoders = n
			return nil
		}},
		{"body-timeout", "PORTRAIT_BODY_TIMEOUT", "10s", "how long a client may take to send a request body (JSON, forms); a slower one fails with 400 and its connection is closed", dur(func(c *Config) *time.Duration { return &c.BodyTimeout })},
		{"upload-timeout", "PORTRAIT_UPLOAD_TIMEOUT", "2m", "how long a client may take to send a multipart upload (setProfilePicture, setGroupPicture)", dur(func(c *Config) *time.Duration { return &c.UploadTimeout })},
		{"fetch-timeout", "PORTRAIT_FETCH_TIMEOUT", "20s", "how long downloading a picture given by URL (setProfilePicture/setGroupPicture with urlFile) may take; its size is capped by --max-upload-bytes, its address by the same rules as webhooks (--webhook-allow)", dur(func(c *Config) *time.Duration { return &c.FetchTimeout })},
		{"max-conns-per-client", "PORTRAIT_MAX_CONNS_PER_CLIENT", "256", "open connections one client address may hold (IPv6: per /64); further ones are closed at once (counted in portrait_connections_refused_total and logged, at most once a minute); 0 switches the limit off", i64(func(c *Config) *int64 { return &c.MaxConnsPerClient })},
		{"auth-failures", "PORTRAIT_AUTH_FAILURES", "30", "failed authentications (unknown idInstance, wrong apiTokenInstance, wrong admin token) one client address may make per minute; past it those get 429 with Retry-After while valid requests are still served; 0 switches the limit off (behind a reverse proxy all clients share its address: raise it, or limit in the proxy)", i64(func(c *Config) *int64 { return &c.AuthFailures })},
		{"decode-memory", "PORTRAIT_DECODE_MEMORY", "1073741824", "memory in bytes that decoding pictures may hold at once, across all requests (1 GiB); each decode is admitted by its estimate and waits for room, a picture that alone needs more gets 413. A 12 MP JPEG or PNG needs a few MiB, a 12 MP HEIC or AVIF about 150 MiB with the system libheif and 700–900 MiB with the built-in decoders (--decoders): with those, below about 1 GiB such photos are refused", i64(func(c *Config) *int64 { return &c.DecodeMemory })},
		{"decoders", "PORTRAIT_DECODERS", "auto", "decoders of HEIC, AVIF and WebP pictures: 'system' (the system's libheif.so.1 and libwebp.so.7, loaded at run time; Debian/Ubuntu packages libheif1 and libwebp7; as fast as libvips, and a 12 MP HEIC needs about 150 MiB), 'builtin' (HEIC and AVIF: libheif and libavif compiled to WebAssembly and sandboxed inside portrait, 3–6× slower and 700–900 MiB for a 12 MP photo; WebP: pure Go, about 2× slower) or 'auto' (each system library that loads, builtin otherwise); those in use are logged at start", func(c *Config, v string) error {
			switch v {
			case "auto", "system", "builtin":
				c.Decoders = v
				return nil
			}
			return errors.New("must be auto, system or builtin")
		}},
		{"rate-limits", "PORTRAIT_RATE_LIMITS", "GREEN-API's", "per-instance, per-method limits in requests/s, as method=rps pairs separated by commas (e.g. getAvatar=10,setProfilePicture=0.1); listed methods override the defaults, 0 removes a limit, 'off' removes all", func(c *Config, v string) error {
			m, err := ParseRateLimits(v)
			c.RateLimits = m
			return err
		}},

		{"webhook-timeout", "PORTRAIT_WEBHOOK_TIMEOUT", "30s", "how long one webhook request may take; past it the notification is retried", dur(func(c *Config) *time.Duration { return &c.WebhookTimeout })},
		{"webhook-retention", "PORTRAIT_WEBHOOK_RETENTION", "24h", "how long a notification is kept: a webhook retries it that long (then it is counted in portrait_webhook_deliveries_total{outcome=\"dropped\"}), a polled queue keeps it that long for its reader (then portrait_notifications_dropped_total{reason=\"retention\"})", dur(func(c *Config) *time.Duration { return &c.WebhookRetention })},
		{"queue-max", "PORTRAIT_QUEUE_MAX", "10000", "notifications kept per instance at most, webhook or polling; past it the oldest are dropped (counted in portrait_notifications_dropped_total{reason=\"cap\"}); 0 means no cap", i64(func(c *Config) *int64 { return &c.QueueMax })},
		{"queue-trim-interval", "PORTRAIT_QUEUE_TRIM_INTERVAL", "1m", "how often every queue is trimmed to --webhook-retention (also the queues nobody polls) and --queue-max", dur(func(c *Config) *time.Duration { return &c.QueueTrimInterval })},
		{"webhook-backoff-min", "PORTRAIT_WEBHOOK_BACKOFF_MIN", "1s", "wait before the first retry of a failed delivery; it doubles on each failure", dur(func(c *Config) *time.Duration { return &c.WebhookBackoffMin })},
		{"webhook-backoff-max", "PORTRAIT_WEBHOOK_BACKOFF_MAX", "60s", "longest wait between two delivery attempts", dur(func(c *Config) *time.Duration { return &c.WebhookBackoffMax })},
		{"webhook-concurrency", "PORTRAIT_WEBHOOK_CONCURRENCY", "256", "webhook requests in flight at most, across all instances (each instance has at most one: its order is kept)", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return errors.New("must be a whole number ≥ 1")
			}
			c.WebhookConcurrency = n
			return nil
		}},
		{"webhook-allow", "PORTRAIT_WEBHOOK_ALLOW", "", "comma-separated address ranges (CIDR, e.g. 127.0.0.0/8,10.1.0.0/16) webhooks may reach although they are loopback, private or link-local; by default such addresses are refused, redirects included", func(c *Config, v string) error {
			c.WebhookAllow = nil
			for _, part := range strings.Split(v, ",") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				p, err := netip.ParsePrefix(part)
				if err != nil {
					a, aerr := netip.ParseAddr(part)
					if aerr != nil {
						return fmt.Errorf("%q is not an address range such as 127.0.0.0/8", part)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				c.WebhookAllow = append(c.WebhookAllow, p.Masked())
			}
			return nil
		}},
		{"avatar-changed-debounce", "PORTRAIT_AVATAR_CHANGED_DEBOUNCE", "2s", "a chat's picture must stay unchanged this long before its avatarChanged notification is made: a burst of changes becomes one notification", dur(func(c *Config) *time.Duration { return &c.ChangeDebounce })},
		{"avatar-changed-debounce-max", "PORTRAIT_AVATAR_CHANGED_DEBOUNCE_MAX", "10s", "longest a continuing burst of changes can postpone its avatarChanged notification", dur(func(c *Config) *time.Duration { return &c.ChangeDebounceMax })},

		{"whatsapp-download-timeout", "PORTRAIT_WHATSAPP_DOWNLOAD_TIMEOUT", "20s", "whatsapp engine: how long downloading one picture from WhatsApp's servers may take", dur(func(c *Config) *time.Duration { return &c.WhatsAppDownloadTimeout })},
		{"whatsapp-max-picture-bytes", "PORTRAIT_WHATSAPP_MAX_PICTURE_BYTES", "5242880", "whatsapp engine: largest picture downloaded from WhatsApp's servers (5 MiB); larger ones fail the lookup", i64(func(c *Config) *int64 { return &c.WhatsAppMaxPictureBytes })},
		{"whatsapp-device-name", "PORTRAIT_WHATSAPP_DEVICE_NAME", "portrait", "whatsapp engine: the name the phone shows under Linked devices", str(func(c *Config) *string { return &c.WhatsAppDeviceName })},
		{"whatsapp-version", "PORTRAIT_WHATSAPP_VERSION", "", "whatsapp engine: pins the WhatsApp Web version announced (e.g. 2.3000.1012345678); empty asks WhatsApp for its current one at start and daily, keeping the built-in one when it cannot be asked (the log says which is in use)", func(c *Config, v string) error {
			parts := strings.Split(v, ".")
			if len(parts) != 3 {
				return errors.New("must be a version such as 2.3000.1012345678")
			}
			for _, p := range parts {
				if _, err := strconv.ParseUint(p, 10, 32); err != nil {
					return errors.New("must be a version such as 2.3000.1012345678")
				}
			}
			c.WhatsAppVersion = v
			return nil
		}},

		{"max-url", "PORTRAIT_MAX_URL", "wss://ws-api.oneme.ru/websocket", "max engine: MAX's WebSocket endpoint for user accounts (the unofficial web protocol)", wsURL(func(c *Config) *string { return &c.MaxURL })},
		{"max-app-version", "PORTRAIT_MAX_APP_VERSION", "26.7.15", "max engine: the web client version announced to MAX, which refuses logins from versions it considers too old; see docs/max-smoke-test.md for how to read the current one", str(func(c *Config) *string { return &c.MaxAppVersion })},
		{"max-root-ca", "PORTRAIT_MAX_ROOT_CA", "", "max engine: PEM file of root certificates to trust besides the system's for MAX's servers", str(func(c *Config) *string { return &c.MaxRootCA })},
		{"max-picture-hosts", "PORTRAIT_MAX_PICTURE_HOSTS", "oneme.ru,max.ru,okcdn.ru,mycdn.me", "max engine: hosts pictures may be downloaded from and uploaded to, over https only (a name allows its subdomains; host:port allows exactly that)", list(func(c *Config) *[]string { return &c.MaxPictureHosts })},
		{"maxbot-url", "PORTRAIT_MAXBOT_URL", "https://platform-api2.max.ru", "maxbot engine: the MAX Bot API's address", httpsURL(func(c *Config) *string { return &c.MaxBotURL })},
		{"maxbot-root-ca", "PORTRAIT_MAXBOT_ROOT_CA", "", "maxbot engine: PEM file of root certificates to trust besides the system's (MAX's documentation asks clients to trust the Russian Ministry of Digital Development's root)", str(func(c *Config) *string { return &c.MaxBotRootCA })},
		{"maxbot-picture-hosts", "PORTRAIT_MAXBOT_PICTURE_HOSTS", "oneme.ru,max.ru,okcdn.ru,mycdn.me", "maxbot engine: hosts pictures may come from and uploads go to, besides the API's own (https only)", list(func(c *Config) *[]string { return &c.MaxBotPictureHosts })},
		{"maxbot-rate-limit", "PORTRAIT_MAXBOT_RATE_LIMIT", "30", "maxbot engine: requests per second one bot token may make (MAX's limit is 30); requests wait for their turn", func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 {
				return errors.New("must be a number of requests per second > 0")
			}
			c.MaxBotRateLimit = f
			return nil
		}},

		{"sandbox-world", "PORTRAIT_SANDBOX_WORLD", "", "JSON file that seeds the world of new sandbox instances (see sandbox/WORLD.md); empty uses the built-in demo world", str(func(c *Config) *string { return &c.SandboxWorld })},
		{"sandbox-latency", "PORTRAIT_SANDBOX_LATENCY", "50ms", "latency the sandbox adds to every messenger call", dur(func(c *Config) *time.Duration { return &c.SandboxLatency })},
		{"sandbox-picture-cooldown", "PORTRAIT_SANDBOX_PICTURE_COOLDOWN", "10s", "a second picture change of the same target within this window gets WhatsApp's rate-overlimit; 0 switches it off", dur(func(c *Config) *time.Duration { return &c.SandboxPictureCooldown })},
		{"sandbox-unknown-group-timeout", "PORTRAIT_SANDBOX_UNKNOWN_GROUP_TIMEOUT", "1s", "how long a call about an unknown group hangs before 'Timed Out'; 0 answers at once", dur(func(c *Config) *time.Duration { return &c.SandboxUnknownGroupTimeout })},
		{"sandbox-fault-timeout", "PORTRAIT_SANDBOX_FAULT_TIMEOUT", "3s", "how long a contact with fault \"timeout\" hangs before the messenger gives up", dur(func(c *Config) *time.Duration { return &c.SandboxFaultTimeout })},
		{"sandbox-faults", "PORTRAIT_SANDBOX_FAULTS", "true", "false switches off every simulated fault (timeouts, upstream rate limits)", boolean(func(c *Config) *bool { return &c.SandboxFaults })},
		{"sandbox-start-delay", "PORTRAIT_SANDBOX_START_DELAY", "500ms", "how long a sandbox instance reports 'starting' after the server starts or it reboots", dur(func(c *Config) *time.Duration { return &c.SandboxStartDelay })},
		{"sandbox-record", "PORTRAIT_SANDBOX_RECORD", "", "file the sandbox appends a JSON line to for every session opened or closed and every call that reached it, with the node and lease it acted under (for cluster tests); empty records nothing", str(func(c *Config) *string { return &c.SandboxRecord })},
		{"sandbox-qr-rotate", "PORTRAIT_SANDBOX_QR_ROTATE", "20s", "how often the sandbox's QR code changes, as WhatsApp's does", dur(func(c *Config) *time.Duration { return &c.SandboxQRRotate })},
	}
}

// list reads a comma-separated list; empty entries are dropped.
func list(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
		*field(c) = out
		return nil
	}
}

// wsURL reads a wss:// URL.
func wsURL(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "wss" || u.Host == "" {
			return errors.New("must be an absolute wss:// URL")
		}
		*field(c) = v
		return nil
	}
}

// httpsURL reads an https:// URL.
func httpsURL(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return errors.New("must be an absolute https:// URL")
		}
		*field(c) = strings.TrimRight(v, "/")
		return nil
	}
}

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func oneOf(field func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, a := range allowed {
			if v == a {
				*field(c) = v
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func dur(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("must be a duration such as 500ms, 10s or 5m")
		}
		*field(c) = d
		return nil
	}
}

// positiveDur reads a duration > 0.
func positiveDur(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a duration > 0 such as 30m or 12h")
		}
		*field(c) = d
		return nil
	}
}

func i64(field func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return errors.New("must be a whole number ≥ 1")
		}
		*field(c) = n
		return nil
	}
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*field(c) = b
		return nil
	}
}

// ParseRateLimits parses "method=rps,…" or "off". Methods are GREEN-API
// method names, matched case-insensitively by the server; "*" stands for
// every method, and "off" is "*=0".
func ParseRateLimits(v string) (map[string]float64, error) {
	v = strings.TrimSpace(v)
	if v == "off" {
		return map[string]float64{"*": 0}, nil
	}
	m := map[string]float64{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, rps, ok := strings.Cut(pair, "=")
		r, err := strconv.ParseFloat(strings.TrimSpace(rps), 64)
		if !ok || strings.TrimSpace(name) == "" || err != nil || r < 0 {
			return nil, fmt.Errorf("%q is not method=requests-per-second (e.g. getAvatar=10)", pair)
		}
		m[strings.TrimSpace(name)] = r
	}
	return m, nil
}

// Parse reads the configuration of `portrait serve` from args (without the
// program and command names) and getenv. Usage and errors go to stderr.
func Parse(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Config{MaxDecoders: runtime.GOMAXPROCS(0), SandboxFaults: true}
	settings := Settings()
	for _, s := range settings {
		if s.Default == "" || describedDefault[s.Flag] {
			continue
		}
		if err := s.set(&c, s.Default); err != nil {
			return c, fmt.Errorf("config: default of %s: %w", s.Flag, err)
		}
	}
	for _, s := range settings {
		if v, ok := lookup(getenv, s.Env); ok {
			if err := s.set(&c, v); err != nil {
				return c, fmt.Errorf("config: %s=%q: %w", s.Env, v, err)
			}
		}
	}
	fs := flag.NewFlagSet("portrait serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range settings {
		s := s
		fs.Func(s.Flag, s.Usage+" (env "+s.Env+", default "+orNone(s.Default)+")", func(v string) error { return s.set(&c, v) })
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	if c.PublicURL == "" {
		c.PublicURL = DefaultPublicURL(c.Listen)
	}
	return c, nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// describedDefault names the settings whose Default is a description for
// people (the value is worked out elsewhere), not a value to apply.
var describedDefault = map[string]bool{"public-url": true, "node-addr": true, "node-id": true, "max-decoders": true, "rate-limits": true, "admin-token": true}

// DefaultPublicURL is the public URL used when none is configured: the
// address the server listens on, with a wildcard host turned into
// localhost.
func DefaultPublicURL(listen string) string { return "http://" + publicHost(listen) }

// publicHost turns a listen address into one a client can reach: a wildcard
// host becomes localhost.
func publicHost(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// Markdown renders the settings as the table of docs/configuration.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment variable | default | what it does |\n|---|---|---|---|\n")
	for _, s := range Settings() {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", s.Flag, s.Env, def, strings.ReplaceAll(s.Usage, "|", "\\|"))
	}
	return b.String()
}
