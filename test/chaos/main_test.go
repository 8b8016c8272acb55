//go:build e2e

package main

import (
	"context"
	"testing"
	"time"

	"github.com/tenantctl/tenant-operator/test/chaos/campaign"
)

// TestChaos is the CI-sized part of the fault campaign (make chaos runs the full one): every fault
// class with fewer faults and tenants, each compared with an undisturbed run of the same script.
func TestChaos(t *testing.T) {
	o := campaign.Options{Seed: time.Now().UnixNano(), Tenants: 6, Faults: 20, MaxDelay: 500 * time.Millisecond,
		Outage: 10 * time.Second, Outages: 5, UpgradeTenants: 10, Logf: t.Logf,
		// About five minutes in all: 20 kills, each API fault once, each dependency once, a leader
		// killed and a leader frozen.
		Rounds: map[string]int{"api": 6, "stray": 4, "leader": 2}}
	ok, err := runCampaign(context.Background(), []string{"crash", "api", "dependencies", "stray", "leader", "upgrade"}, "HEAD~1", o, false)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Errorf("the fault campaign found problems (seed %d; each is logged above, and the report)", o.Seed)
	}
}
