package demogen

import (
	"errors"
	"fmt"
	"time"
)

// The demo vertical's topics (verticals/streaming/vertical.yaml), which the
// generator writes in their formats.
const (
	TopicAccounts      = "streaming.public.accounts"
	TopicProfiles      = "streaming.public.profiles"
	TopicDevices       = "streaming.public.devices"
	TopicSubscriptions = "billing.public.subscriptions"
	TopicLogin         = "requests.login"
	TopicTitlePage     = "requests.title_page"
	TopicPlayback      = "requests.playback"
	TopicAds           = "requests.ads"
	TopicTitles        = "meta.titles"
	TopicCampaigns     = "meta.campaigns"
)

// EventTopics are the topics the pipeline consumes, in vertical.yaml order.
func EventTopics() []string {
	return []string{TopicAccounts, TopicProfiles, TopicDevices, TopicSubscriptions,
		TopicLogin, TopicTitlePage, TopicPlayback, TopicAds}
}

// MetadataTopics are the compacted topics the enrichment caches read.
func MetadataTopics() []string { return []string{TopicTitles, TopicCampaigns} }

// Config configures the generator.
type Config struct {
	// Rate is how many records per second to publish, on average (bursts
	// are a twentieth of a second's worth). 0 publishes nothing at all, not
	// even metadata. Default 300.
	Rate float64
	// Seed makes a fresh generator's sequence reproducible. A generator that
	// finds a state file continues the sequence saved there instead. Default 1.
	Seed uint64
	// StateFile keeps the generator's progress (rows, random state, counters)
	// across restarts, so a restarted demo updates and deletes the rows it
	// created before and never reuses an id. Empty keeps no state: every
	// start begins a new sequence (ids stay unique, see the package doc).
	StateFile string
	// CheckpointInterval is the least time between two saves of StateFile;
	// it is also saved when Run stops. Default 5s.
	CheckpointInterval time.Duration
	// Accounts is the number of streaming accounts the CDC tables hover
	// around; profiles, devices and subscriptions scale with it. Default 400.
	Accounts int
	// AnonymousUsers is the number of ad users who never log in (they see
	// ads but identify no account). Default 200.
	AnonymousUsers int
	// Titles is the size of the catalogue published first; it grows by new
	// releases up to twice that. Default 150.
	Titles int
	// Campaigns is the number of ad campaigns, each with two to four
	// creatives. Default 12.
	Campaigns int
	// MalformedShare is the share of records that are malformed on purpose
	// (bad JSON, missing fields, bad times, bad decimals) so that the
	// dead-letter topic fills. Default 0.01.
	MalformedShare float64
	// Clock is the source of event times. Default time.Now.
	Clock func() time.Time
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Rate:               300,
		Seed:               1,
		CheckpointInterval: 5 * time.Second,
		Accounts:           400,
		AnonymousUsers:     200,
		Titles:             150,
		Campaigns:          12,
		MalformedShare:     0.01,
		Clock:              time.Now,
	}
}

// Bounds of the pools: large enough for a lively graph, small enough for
// the state file (rewritten at every checkpoint) to stay around a megabyte.
const (
	maxAccounts  = 20000
	maxUsers     = 100000
	maxTitles    = 5000
	maxCampaigns = 500
)

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("demogen: invalid config")

// Validate reports every unacceptable field, each named demogen.<field>.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: demogen.%s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.Rate < 0 || c.Rate > 1e6 {
		bad("rate", "%v is not between 0 and 1000000 records/s", c.Rate)
	}
	if c.CheckpointInterval <= 0 {
		bad("checkpoint_interval", "must be positive")
	}
	if c.Accounts < 1 || c.Accounts > maxAccounts {
		bad("accounts", "%d is not between 1 and %d", c.Accounts, maxAccounts)
	}
	if c.AnonymousUsers < 0 || c.AnonymousUsers > maxUsers {
		bad("anonymous_users", "%d is not between 0 and %d", c.AnonymousUsers, maxUsers)
	}
	if c.Titles < 1 || c.Titles > maxTitles {
		bad("titles", "%d is not between 1 and %d", c.Titles, maxTitles)
	}
	if c.Campaigns < 1 || c.Campaigns > maxCampaigns {
		bad("campaigns", "%d is not between 1 and %d", c.Campaigns, maxCampaigns)
	}
	if c.MalformedShare < 0 || c.MalformedShare > 0.5 {
		bad("malformed_share", "%v is not between 0 and 0.5", c.MalformedShare)
	}
	if c.Clock == nil {
		bad("clock", "must be set")
	}
	return errors.Join(errs...)
}
