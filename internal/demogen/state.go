package demogen

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// stateVersion is the format of the state file; a file of another version
// is refused rather than misread.
const stateVersion = 1

// state is everything the generator's next record depends on, besides its
// configuration and the clock. It is what StateFile holds.
type state struct {
	Version int    `json:"version"`
	Seed    uint64 `json:"seed"`
	// RNG is the random source's state (PCG, binary).
	RNG []byte `json:"rng"`
	// Run is the tag of the last run that published (the run's start, in
	// Unix milliseconds): request ids carry it, so that a new run never
	// reuses one.
	Run int64 `json:"run"`
	// LastEventUS is the last event time given out, in Unix microseconds.
	// Event times strictly increase, also across restarts, and CDC events use
	// theirs as the log sequence number.
	LastEventUS int64 `json:"last_event_us"`
	TxID        int64 `json:"tx_id"`
	// MetadataPublished: the catalogue and campaigns went out once.
	MetadataPublished bool `json:"metadata_published"`
	// SnapshotLeft counts the snapshot rows (op r) still to publish per
	// table: accounts, profiles, devices, subscriptions.
	SnapshotLeft [4]int `json:"snapshot_left"`
	// Titles is the catalogue's size (titles t-100 … t-(100+Titles-1)).
	Titles int `json:"titles"`
	// CampaignRevs is each campaign document's revision.
	CampaignRevs []int `json:"campaign_revs"`

	Accounts      *table[Account]      `json:"accounts"`
	Profiles      *table[Profile]      `json:"profiles"`
	Devices       *table[Device]       `json:"devices"`
	Subscriptions *table[Subscription] `json:"subscriptions"`
}

func accountKey(a Account) string           { return strconv.FormatInt(a.AccountID, 10) }
func profileKey(p Profile) string           { return p.ProfileID }
func deviceKey(d Device) string             { return d.DeviceID }
func subscriptionKey(s Subscription) string { return strconv.FormatInt(s.SubscriptionID, 10) }

// freshState is the state of a generator that has published nothing.
func freshState(cfg Config) *state {
	pcg := rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)
	rng, _ := pcg.MarshalBinary() // PCG's MarshalBinary cannot fail
	a := cfg.Accounts
	return &state{
		Version:      stateVersion,
		Seed:         cfg.Seed,
		RNG:          rng,
		TxID:         700,
		SnapshotLeft: [4]int{a / 2, a, a * 3 / 2, a / 3},
		Titles:       cfg.Titles,
		CampaignRevs: make([]int, cfg.Campaigns),
		Accounts:     newTable(1001, accountKey),
		// Profiles and devices have text ids from their own sequences.
		Profiles:      newTable(2001, profileKey),
		Devices:       newTable(3001, deviceKey),
		Subscriptions: newTable(5001, subscriptionKey),
	}
}

// ErrState: the state file exists but cannot be used.
var ErrState = errors.New("demogen: state file")

// loadState reads path; a missing file is (nil, nil).
func loadState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d (remove the file to start a new sequence)", ErrState, path, st.Version, stateVersion)
	}
	if st.Accounts == nil || st.Profiles == nil || st.Devices == nil || st.Subscriptions == nil || len(st.RNG) == 0 {
		return nil, fmt.Errorf("%w: %s: incomplete", ErrState, path)
	}
	st.Accounts.reindex(accountKey)
	st.Profiles.reindex(profileKey)
	st.Devices.reindex(deviceKey)
	st.Subscriptions.reindex(subscriptionKey)
	return &st, nil
}

// saveState writes st to path atomically: a crash leaves the old file or
// the new one, never half of one.
func saveState(path string, st *state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrState, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: write %s: %v", ErrState, tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: sync %s: %v", ErrState, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	return nil
}
