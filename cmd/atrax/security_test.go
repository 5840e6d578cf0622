package main

import "testing"

func TestDevelopmentMode(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"ATRAX_ENV": "development"}, true},
		{map[string]string{"NODE_ENV": "development"}, true},
		{map[string]string{"NODE_ENV": "production"}, false},
		{map[string]string{"ATRAX_ENV": "production", "NODE_ENV": "development"}, false},
		{map[string]string{"ATRAX_ENV": "Development"}, false},
	}
	for _, tt := range tests {
		if got := developmentMode(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("developmentMode(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}
