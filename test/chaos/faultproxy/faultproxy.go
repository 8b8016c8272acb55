// Package faultproxy is a small fault-injecting proxy between the operator and kube-apiserver, for
// the fault campaign (docs/reliability.md). The operator talks plain HTTP to the proxy, without
// credentials; the proxy forwards every request as the operator's own identity (its client
// certificate) and, while a fault is set, answers a share of the requests with it instead: a 500,
// a 429 with Retry-After, a 409 conflict on writes, a request held and then timed out, a watch cut
// mid-stream, or a list with half its items missing.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
)

// Fault is what the proxy does to a request it picks.
type Fault string

const (
	// None forwards every request.
	None Fault = ""
	// ServerError answers 500 InternalError.
	ServerError Fault = "500"
	// TooManyRequests answers 429 with Retry-After: 1, as API Priority and Fairness does.
	TooManyRequests Fault = "429"
	// Conflict answers a write 409 Conflict, as a stale resourceVersion would.
	Conflict Fault = "409"
	// Timeout holds a request (not a watch) for Hold, then answers 504 Timeout.
	Timeout Fault = "timeout"
	// CutWatch ends a watch's stream after up to two seconds.
	CutWatch Fault = "cut-watch"
	// PartialList drops every second item of a list (not a watch), as a lagging or partial view.
	PartialList Fault = "partial-list"
)

// Faults are all the faults, in the order a campaign cycles through them.
var Faults = []Fault{ServerError, TooManyRequests, Conflict, Timeout, CutWatch, PartialList}

// Hold is how long a Timeout fault holds a request (a variable for the proxy's own tests).
var Hold = 10 * time.Second

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	upstream *url.URL
	forward  *httputil.ReverseProxy
	server   *http.Server
	addr     string

	mu     sync.Mutex
	fault  Fault
	share  float64
	random *rand.Rand

	requests, injected atomic.Int64
}

// Start starts a proxy to the API server of upstream, authenticating as upstream's identity.
func Start(upstream *rest.Config) (*Proxy, error) {
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, err
	}
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: target, addr: ln.Addr().String(), random: rand.New(rand.NewSource(time.Now().UnixNano()))}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     transport,
		FlushInterval: -1, // watches stream
		// A request the operator gave up on (a cut watch, a restart) is not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(p.server)
	return p, nil
}

// URL is where clients reach the proxy.
func (p *Proxy) URL() string { return "http://" + p.addr }

// Set makes the proxy answer the given share (0..1) of the requests the fault applies to with it;
// None stops injecting.
func (p *Proxy) Set(f Fault, share float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.share = f, share
}

// Requests is how many requests the proxy has received; Injected how many it answered with a fault.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Injected is how many requests the proxy answered with a fault.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// Stop closes the proxy and every connection through it.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.server.Close()
}

// Down makes the API server unreachable for the operator, as if it were down: every connection
// through the proxy is closed and new ones are refused, until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.server.Close()
}

// Up serves again at the same address after Down.
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(p.server)
	return nil
}

// pick decides whether this request gets the current fault.
func (p *Proxy) pick(applies bool) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault == None || !applies || p.random.Float64() >= p.share {
		return None
	}
	return p.fault
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	watch := r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1"
	list := r.Method == http.MethodGet && !watch && isCollection(r.URL.Path)
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	p.mu.Lock()
	current := p.fault
	p.mu.Unlock()
	var applies bool
	switch current {
	case Conflict:
		applies = write
	case Timeout, PartialList:
		applies = !watch && (current != PartialList || list)
	case CutWatch:
		applies = watch
	default:
		applies = true
	}
	f := p.pick(applies)
	if f != None {
		p.injected.Add(1)
	}
	switch f {
	case ServerError:
		status(w, http.StatusInternalServerError, "InternalError", "injected by the fault proxy")
	case TooManyRequests:
		w.Header().Set("Retry-After", "1")
		status(w, http.StatusTooManyRequests, "TooManyRequests", "injected by the fault proxy: too many requests")
	case Conflict:
		status(w, http.StatusConflict, "Conflict", "injected by the fault proxy: the object has been modified; please apply your changes to the latest version and try again")
	case Timeout:
		select {
		case <-r.Context().Done():
		case <-time.After(Hold):
		}
		status(w, http.StatusGatewayTimeout, "Timeout", "injected by the fault proxy: the request timed out")
	case CutWatch:
		ctx, cancel := context.WithTimeout(r.Context(), time.Duration(p.random.Int63n(int64(2*time.Second))))
		defer cancel()
		p.forward.ServeHTTP(w, r.WithContext(ctx))
	case PartialList:
		p.partialList(w, r)
	default:
		p.forward.ServeHTTP(w, r)
	}
}

// partialList forwards a list asking for JSON and answers it with every second item dropped.
func (p *Proxy) partialList(w http.ResponseWriter, r *http.Request) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept", "application/json")
	r.Header.Del("Accept-Encoding")
	rec := &recorder{header: http.Header{}}
	p.forward.ServeHTTP(rec, r)
	body := rec.body.Bytes()
	if rec.code == http.StatusOK {
		var list map[string]any
		if err := json.Unmarshal(body, &list); err == nil {
			if items, ok := list["items"].([]any); ok {
				var kept []any
				for i, item := range items {
					if i%2 == 0 {
						kept = append(kept, item)
					}
				}
				list["items"] = kept
				if data, err := json.Marshal(list); err == nil {
					body = data
				}
			}
		}
	}
	for k, v := range rec.header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.code)
	_, _ = w.Write(body)
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	code   int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.code = code }

// status answers with a Kubernetes Status, as kube-apiserver does.
func status(w http.ResponseWriter, code int, reason, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, message, reason, code))
}

// isCollection says whether a path names a collection (a list) rather than one object:
// /api/v1/<resource>, /api/v1/namespaces/<ns>/<resource>, and the same under /apis/<group>/<version>.
func isCollection(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return false
	}
	if len(parts) >= 3 && parts[0] == "namespaces" && parts[2] != "status" && parts[2] != "finalize" {
		parts = parts[2:]
	}
	return len(parts) == 1
}
