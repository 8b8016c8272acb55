package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// auditPolicy logs, at Metadata level, every request of the operator's identity except its
// leader-election Lease renewals (a constant cost of running with leader election, one renewal every
// two seconds whatever the number of tenants), and nothing of anyone else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}]
- level: Metadata
  users: [%q]
- level: None
`

// auditEvent is one request of the operator, as the apiserver recorded it.
type auditEvent struct {
	At        time.Time
	Verb      string // get, list, watch, create, update, patch, delete, deletecollection
	Resource  string // group/resource, e.g. "namespaces", "rbac.authorization.k8s.io/rolebindings"
	Name      string // the object's name, for requests about one object
	Namespace string
	Subsource string
}

// auditLog tails kube-apiserver's audit log: the apiserver's own count of the operator's requests.
type auditLog struct {
	path   string
	mu     sync.Mutex
	offset int64
	events []auditEvent
	last   time.Time // when the log last grew
}

func (a *auditLog) refresh() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.Open(a.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return nil // a partial line is read again next time
		}
		if err != nil {
			return err
		}
		a.offset += int64(len(line))
		a.last = time.Now()
		var e struct {
			Stage          string    `json:"stage"`
			Verb           string    `json:"verb"`
			StageTimestamp time.Time `json:"stageTimestamp"`
			ObjectRef      struct {
				Resource    string `json:"resource"`
				APIGroup    string `json:"apiGroup"`
				Name        string `json:"name"`
				Namespace   string `json:"namespace"`
				Subresource string `json:"subresource"`
			} `json:"objectRef"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("audit log %s: %w", a.path, err)
		}
		// A watch is logged when its response starts and again when it ends: count it once, when
		// it starts. Every other request is counted when it completes.
		if (e.Verb == "watch") != (e.Stage == "ResponseStarted") {
			continue
		}
		res := e.ObjectRef.Resource
		if e.ObjectRef.APIGroup != "" {
			res = e.ObjectRef.APIGroup + "/" + res
		}
		a.events = append(a.events, auditEvent{At: e.StageTimestamp, Verb: e.Verb, Resource: res, Name: e.ObjectRef.Name, Namespace: e.ObjectRef.Namespace, Subsource: e.ObjectRef.Subresource})
	}
}

// between returns the operator's requests recorded in [from, to).
func (a *auditLog) between(from, to time.Time) ([]auditEvent, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []auditEvent
	for _, e := range a.events {
		if !e.At.Before(from) && e.At.Before(to) {
			out = append(out, e)
		}
	}
	return out, nil
}

// quietSince is when the operator last sent a request (leases aside).
func (a *auditLog) quietSince() (time.Time, error) {
	if err := a.refresh(); err != nil {
		return time.Time{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last, nil
}

func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// countVerbs counts events by verb; byVerbResource by "verb resource[/subresource]".
func countVerbs(events []auditEvent) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		out[e.Verb]++
	}
	return out
}

func byVerbResource(events []auditEvent) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		k := e.Verb + " " + e.Resource
		if e.Subsource != "" {
			k += "/" + e.Subsource
		}
		out[k]++
	}
	return out
}

// metricLine is one sample of the Prometheus text format.
var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf)$`)

type metricSample struct {
	name, labels string
	value        float64
}

// metrics are one scrape of the operator's /metrics (controller-runtime's and client-go's).
type metrics []metricSample

func scrape(addr string) (metrics, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out metrics
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		out = append(out, metricSample{name: m[1], labels: m[2], value: v})
	}
	return out, sc.Err()
}

// sum adds the samples of name whose labels hold every fragment, grouped by the label by ("" for
// one total).
func (ms metrics) sum(name, by string, fragments ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ms {
		if s.name != name {
			continue
		}
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(s.labels, f)
		}
		if !ok {
			continue
		}
		key := ""
		if by != "" {
			key = label(s.labels, by)
		}
		out[key] += s.value
	}
	return out
}

func label(labels, name string) string {
	i := strings.Index(labels, name+`="`)
	if i < 0 {
		return ""
	}
	rest := labels[i+len(name)+2:]
	return rest[:strings.Index(rest, `"`)]
}

// histogramQuantile estimates quantile q of the histogram name (with the fragments) from the
// difference of two scrapes, as Prometheus' histogram_quantile does (linear within a bucket).
func histogramQuantile(before, after metrics, name string, q float64, fragments ...string) float64 {
	b, a := before.sum(name+"_bucket", "le", fragments...), after.sum(name+"_bucket", "le", fragments...)
	type bucket struct{ le, count float64 }
	var buckets []bucket
	for le, n := range a {
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			bound = math.Inf(1)
		}
		buckets = append(buckets, bucket{bound, n - b[le]})
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	if len(buckets) == 0 || buckets[len(buckets)-1].count == 0 {
		return 0
	}
	total := buckets[len(buckets)-1].count
	rank := q * total
	prevLE, prevCount := 0.0, 0.0
	for _, bk := range buckets {
		if bk.count >= rank {
			if math.IsInf(bk.le, 1) {
				return prevLE
			}
			if bk.count == prevCount {
				return bk.le
			}
			return prevLE + (bk.le-prevLE)*(rank-prevCount)/(bk.count-prevCount)
		}
		prevLE, prevCount = bk.le, bk.count
	}
	return prevLE
}

// heapAfterGC forces a garbage collection in the operator and returns its live heap (runtime
// MemStats.HeapAlloc), from Go's own heap profile endpoint.
func heapAfterGC(pprofAddr string) (uint64, error) {
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no HeapAlloc in the operator's heap profile")
}

// saveProfile writes a pprof profile (path and query under /debug/pprof/) of the operator to file.
func saveProfile(pprofAddr, what, file string) error {
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/" + what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", what, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rss is a process's resident set size, from /proc.
func rss(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}
