package config

import (
	"encoding/json"
	"testing"
	"time"
)

// Durations are read once, when the file is: callers get a time.Duration and never parse text.
func TestDurationsAreParsedOnce(t *testing.T) {
	c, err := Parse([]byte("maxGrantDuration: 720h\nvault:\n  address: https://vault.example:8200\n  tokenTTL: 1h30m\n" +
		"  auth: {method: kubernetes, role: tenant-operator}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		got  time.Duration // as callers read it
		want time.Duration
	}{
		"maxGrantDuration":       {c.MaxGrantDuration.Duration, 720 * time.Hour},
		"vault.tokenTTL":         {c.Vault.TokenTTL.Duration, 90 * time.Minute},
		"vault.resyncInterval":   {c.Vault.ResyncInterval.Duration, 5 * time.Minute}, // left out: the default
		"no maxGrantDuration is": {Default().MaxGrantDuration.Duration, 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", name, tc.got, tc.want)
		}
	}
	// Messages show a duration as the platform wrote it.
	if got := c.MaxGrantDuration.String(); got != "720h" {
		t.Errorf("maxGrantDuration prints as %q, want 720h", got)
	}
	// A configuration written back out reads the same.
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if again.MaxGrantDuration != c.MaxGrantDuration || *again.Vault != *c.Vault {
		t.Errorf("round trip: %+v, want %+v", again, c)
	}
}
