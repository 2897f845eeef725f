package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Production mode refuses development keys, naming each missing setting;
// it is switched on by flag, environment or config file alike.
func TestProductionRefusesDevelopmentKeys(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "station.json")
	if err := os.WriteFile(cfgFile, []byte(`{"production": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, []byte(`{"production": true, "ca_cert": "/etc/station/ca.pem", "ca_key": "/etc/station/ca-key.pem",
		"seal_to": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		refused []string // settings the error must name; none = starts
	}{
		{"development by default", nil, nil, nil},
		{"flag", []string{"--production"}, nil, []string{"ca_cert", "ca_key", "seal_to"}},
		{"environment", nil, map[string]string{"STATION_PRODUCTION": "true"}, []string{"ca_cert", "ca_key", "seal_to"}},
		{"config file", []string{"--config", cfgFile}, nil, []string{"ca_cert", "ca_key", "seal_to"}},
		{"only the CA configured", []string{"--production"}, map[string]string{"STATION_CA_CERT": "/ca.pem", "STATION_CA_KEY": "/ca-key.pem"}, []string{"seal_to"}},
		{"real keys", []string{"--config", keys}, nil, nil},
		{"bad environment value", nil, map[string]string{"STATION_PRODUCTION": "yes please"}, []string{"STATION_PRODUCTION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServeFlags(tc.args, envOf(tc.env), io.Discard)
			if len(tc.refused) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("started with development keys in production")
			}
			for _, k := range tc.refused {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error %q does not name %s", err, k)
				}
			}
			if len(tc.refused) == 1 && tc.refused[0] == "seal_to" && strings.Contains(err.Error(), "ca_cert") {
				t.Errorf("error %q names ca_cert although it is configured", err)
			}
		})
	}
}
