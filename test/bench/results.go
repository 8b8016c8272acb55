package main

import "time"

// Results is one run of the benchmark: the machine, and a Scenario per shape and size. The program
// writes it as JSON (docs/performance/results.json) and renders docs/performance.md and the plots
// from it, so a run can be re-rendered without measuring again.
type Results struct {
	// Started is when the run began (UTC).
	Started time.Time `json:"started"`
	// Command reproduces the run.
	Command string  `json:"command"`
	Machine Machine `json:"machine"`
	// Concurrency is C: how many Tenants the benchmark applies at once.
	Concurrency int `json:"concurrency"`
	// Workers is the operator's --concurrency (reconcile workers), and the floor's writers.
	Workers   int        `json:"workers"`
	Scenarios []Scenario `json:"scenarios"`
	// Unrelated is the operator's memory before and after the cluster filled with objects it does
	// not own (nil when not measured).
	Unrelated *Unrelated `json:"unrelated,omitempty"`
}

// Machine is what the run ran on.
type Machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpuModel"`
	MemoryGiB  int    `json:"memoryGiB"`
	GoVersion  string `json:"goVersion"`
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
	Commit     string `json:"commit"`
}

// Scenario is N tenants of one shape.
type Scenario struct {
	// Shape is minimal (namespace, isolation, access), database (a dedicated CloudNativePG cluster,
	// its readiness written by a stand-in) or secrets (real Vault and External Secrets Operator).
	Shape string `json:"shape"`
	N     int    `json:"n"`
	// DeletionPolicy the tenants were created with (Retain or Delete).
	DeletionPolicy string `json:"deletionPolicy"`
	// Commit the scenario was measured at, when it differs from the run's (a scenario measured
	// alone and merged into a published run).
	Commit string `json:"commit,omitempty"`

	// Operator, throughput: the N Tenants applied C at a time without waiting (open loop), from
	// the first apply to the last Ready. The burst's apply-to-Ready times are mostly queueing.
	Seconds         float64 `json:"seconds"`
	Throughput      float64 `json:"throughput"` // tenants Ready per second
	BurstLatencyP50 float64 `json:"burstLatencyP50,omitempty"`
	BurstLatencyP99 float64 `json:"burstLatencyP99,omitempty"`

	// Operator, latency: LatencyTenants more Tenants applied once the N are Ready, by C appliers
	// that each wait for theirs to be Ready before the next (closed loop): seconds from the apply
	// to Ready observed.
	LatencyTenants int     `json:"latencyTenants,omitempty"`
	LatencyP50     float64 `json:"latencyP50"`
	LatencyP95     float64 `json:"latencyP95"`
	LatencyP99     float64 `json:"latencyP99"`
	LatencyMax     float64 `json:"latencyMax"`

	// Floor: the same objects created by a plain client with Workers writers, no controller.
	FloorSeconds    float64 `json:"floorSeconds"`
	FloorThroughput float64 `json:"floorThroughput"`
	FloorObjects    int     `json:"floorObjects"` // objects per tenant the floor created
	// Ratio is Throughput / FloorThroughput.
	Ratio float64 `json:"ratio"`

	// Requests the operator sent from the first create until all were Ready and it was quiet,
	// per tenant, by HTTP verb (the client's own metrics), and the apiserver's count for the
	// operator's identity by audit verb (get, list, watch, create, patch, update, delete, ...).
	ClientRequestsPerTenant map[string]float64 `json:"clientRequestsPerTenant"`
	ServerRequestsPerTenant map[string]float64 `json:"serverRequestsPerTenant"`
	RequestsPerTenant       float64            `json:"requestsPerTenant"`
	WritesPerTenant         float64            `json:"writesPerTenant"`

	// Idle: requests by the operator's identity (audit verbs, leader-election leases excluded)
	// over IdleSeconds once every tenant was Ready.
	IdleSeconds  float64        `json:"idleSeconds"`
	IdleRequests map[string]int `json:"idleRequests"`

	// Restart: requests of a new operator process over the same N tenants until it settled.
	RestartSeconds  float64        `json:"restartSeconds"`
	RestartRequests map[string]int `json:"restartRequests"`
	// RestartObjectReads are GETs of one named object (not lists or watches).
	RestartObjectReads int `json:"restartObjectReads"`
	RestartWrites      int `json:"restartWrites"`

	// Memory of the operator with the N tenants Ready (heap after a forced GC, and RSS), and the
	// same before the scenario's tenants existed.
	HeapBytes           uint64  `json:"heapBytes"`
	HeapBytesBefore     uint64  `json:"heapBytesBefore"`
	RSSBytes            uint64  `json:"rssBytes"`
	HeapBytesPerTenant  float64 `json:"heapBytesPerTenant"`
	ReconcileSecondsP99 float64 `json:"reconcileSecondsP99"` // from controller_runtime_reconcile_time_seconds
	MaxQueueDepth       float64 `json:"maxQueueDepth"`       // workqueue_depth{name="tenant"}, sampled

	// Deletion: every Tenant deleted at once (Concurrency at a time) until all are gone
	// (0 when not measured).
	DeleteSeconds float64 `json:"deleteSeconds"`

	// Profiles written for this scenario (paths relative to the results file).
	CPUProfile  string `json:"cpuProfile,omitempty"`
	HeapProfile string `json:"heapProfile,omitempty"`
}

// Unrelated is the operator's heap with no tenants, before and after the cluster was filled with
// Namespaces, Secrets and ConfigMaps the operator does not own.
type Unrelated struct {
	Namespaces int    `json:"namespaces"`
	Secrets    int    `json:"secrets"`
	ConfigMaps int    `json:"configMaps"`
	HeapBefore uint64 `json:"heapBefore"`
	HeapAfter  uint64 `json:"heapAfter"`
	RSSBefore  uint64 `json:"rssBefore"`
	RSSAfter   uint64 `json:"rssAfter"`
}
