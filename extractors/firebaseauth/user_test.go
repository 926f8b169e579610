package firebaseauth

import (
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

func TestHashParamsAllOrNothingAndNoSecretsInErrors(t *testing.T) {
	const key = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
	p, err := HashParams(plugin.Config{})
	if err != nil || !p.IsZero() {
		t.Fatalf("no parameters: %v, %v", p, err)
	}
	p, err = HashParams(plugin.Config{"hash-signer-key": key, "hash-salt-separator": "Bw==", "hash-rounds": "8", "hash-mem-cost": "14"})
	if err != nil || p.IsZero() || p.Rounds() != 8 {
		t.Fatalf("all four: %v, %v", p, err)
	}
	_, err = HashParams(plugin.Config{"hash-signer-key": key})
	if err == nil || !strings.Contains(err.Error(), "--hash-rounds") || !strings.Contains(err.Error(), "--hash-salt-separator") {
		t.Fatalf("partial: %v", err)
	}
	for _, cfg := range []plugin.Config{
		{"hash-signer-key": key + "!", "hash-salt-separator": "Bw==", "hash-rounds": "8", "hash-mem-cost": "14"},
		{"hash-signer-key": key, "hash-salt-separator": "Bw==!" + key, "hash-rounds": "8", "hash-mem-cost": "14"},
		{"hash-signer-key": key, "hash-salt-separator": "Bw==", "hash-rounds": "80", "hash-mem-cost": "14"},
	} {
		_, err := HashParams(cfg)
		if err == nil || strings.Contains(err.Error(), key[:20]) || strings.Contains(err.Error(), "Bw==") {
			t.Fatalf("bad parameters: err = %v (must exist and not quote secrets)", err)
		}
	}
}
